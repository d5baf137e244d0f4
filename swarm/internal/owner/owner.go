// Package owner gives background work one owner. Work handed to a Group
// while its Run runs gets Run's context, and Run returns only after every
// piece of it has ended; work handed to a Group that has stopped is
// refused. A component that owns a Group therefore leaves nothing behind
// once its Run has returned.
package owner

import (
	"context"
	"sync"
)

// Group runs background work for the duration of its Run. The zero value
// is not usable; call New.
type Group struct {
	submit   chan func(context.Context)
	stopping chan struct{} // closed when Run's context has ended
	once     sync.Once
}

// New returns a Group whose Run has not started.
func New() *Group {
	return &Group{submit: make(chan func(context.Context)), stopping: make(chan struct{})}
}

// Run runs the work handed to g until ctx ends, then refuses new work and
// waits for the work running to end. Call it once.
func (g *Group) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for {
		select {
		case f := <-g.submit:
			wg.Go(func() { f(ctx) })
		case <-ctx.Done():
			g.once.Do(func() { close(g.stopping) })
			wg.Wait()
			return
		}
	}
}

// Go hands f to the running Group, which calls it with Run's context in a
// goroutine of its own. It waits for Run to take f at most until wait ends
// (Run not started yet) and reports whether f will run.
func (g *Group) Go(wait context.Context, f func(ctx context.Context)) bool {
	select {
	case <-g.stopping:
		return false
	default:
	}
	select {
	case g.submit <- f:
		return true
	case <-g.stopping:
		return false
	case <-wait.Done():
		return false
	}
}

// Do runs f like Go and waits for it to return. It reports whether f ran.
func (g *Group) Do(wait context.Context, f func(ctx context.Context)) bool {
	done := make(chan struct{})
	if !g.Go(wait, func(ctx context.Context) {
		defer close(done)
		f(ctx)
	}) {
		return false
	}
	<-done
	return true
}
