package owner

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// Run returns only after the work it took has ended, and refuses work
// after its context ended.
func TestRunWaitsForWorkAndThenRefuses(t *testing.T) {
	g := New()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	returned := make(chan struct{})
	go func() { g.Run(ctx); close(returned) }()
	var ended atomic.Bool
	wait, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if !g.Go(wait, func(ctx context.Context) {
		close(ran)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // cleanup after the cancel
		ended.Store(true)
	}) {
		t.Fatal("work refused by a running group")
	}
	<-ran
	cancel()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if !ended.Load() {
		t.Fatal("Run returned before its work ended")
	}
	if g.Go(wait, func(context.Context) { t.Error("work ran after Run returned") }) {
		t.Fatal("a stopped group took work")
	}
	if g.Do(wait, func(context.Context) {}) {
		t.Fatal("a stopped group ran work")
	}
}

// Before Run starts, Go waits at most until its wait context ends.
func TestGoBeforeRunIsBounded(t *testing.T) {
	g := New()
	wait, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if g.Go(wait, func(context.Context) {}) {
		t.Fatal("work taken with no Run")
	}
}
