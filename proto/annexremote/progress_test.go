package annexremote

import (
	"slices"
	"sync"
	"testing"
	"time"
)

type sentValues struct {
	mu   sync.Mutex
	vals []int64
}

func (s *sentValues) send(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals = append(s.vals, n)
}

func (s *sentValues) get() []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.vals)
}

func TestProgressCoalesces(t *testing.T) {
	var s sentValues
	p := newProgress(s.send, time.Hour)
	for _, n := range []int64{1, 2, 3} {
		p.report(n)
	}
	if got := s.get(); !slices.Equal(got, []int64{1}) {
		t.Fatalf("before close: %v, want the first value only", got)
	}
	p.close()
	p.report(4) // after the reply: never sent
	p.close()
	if got := s.get(); !slices.Equal(got, []int64{1, 3}) {
		t.Fatalf("after close: %v, want [1 3]", got)
	}
}

func TestProgressNoRepeat(t *testing.T) {
	var s sentValues
	p := newProgress(s.send, time.Nanosecond)
	for _, n := range []int64{0, 0, 7, 7, 9} {
		p.report(n)
		// Let the interval pass before the next report (the clock is
		// monotonic, a nanosecond interval passes at once).
		for start := time.Now(); time.Since(start) < time.Microsecond; {
		}
	}
	p.close()
	if got := s.get(); !slices.Equal(got, []int64{0, 7, 9}) {
		t.Fatalf("got %v, want each value once", got)
	}
}

// TestProgressFlushesWithoutMoreReports checks what stall detection needs:
// the latest value reaches git-annex even when the backend reports nothing
// more for a while.
func TestProgressFlushesWithoutMoreReports(t *testing.T) {
	var s sentValues
	p := newProgress(s.send, 5*time.Millisecond)
	defer p.close()
	p.report(10)
	p.report(20)
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(s.get(), []int64{10, 20}) {
		if time.Now().After(deadline) {
			t.Fatalf("pending value never sent: %v", s.get())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestProgressConcurrent(t *testing.T) {
	var s sentValues
	p := newProgress(s.send, time.Millisecond)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1000 {
				p.report(int64(g*1000 + i))
			}
		})
	}
	wg.Wait()
	p.close()
	if len(s.get()) == 0 {
		t.Fatal("nothing sent")
	}
}
