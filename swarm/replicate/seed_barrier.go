package replicate

import (
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// readySettle is how long the seeder waits for the other new holders once
// one is Ready: a member frozen (its connection open, nothing answered)
// or far slower than the others no longer holds the whole seeding until
// readyWait (docs/REPLICATION.md "copies_min first").
const readySettle = 2 * time.Second

// readyBarrier is the start of a seeding's fetches: the new holders first
// launched each signal once, Ready or ended before, and the seeder lets
// them start when every one has, or when one is Ready and readySettle has
// passed, or at readyWait.
type readyBarrier struct {
	mu      sync.Mutex
	waiting int       // launched, neither Ready nor ended yet
	ready   []peer.ID // Ready, in the order they were
	any     chan struct{}
	all     chan struct{}
}

// newReadyBarrier returns the barrier of n new holders.
func newReadyBarrier(n int) *readyBarrier {
	b := &readyBarrier{waiting: n, any: make(chan struct{}), all: make(chan struct{})}
	if n == 0 {
		close(b.all)
	}
	return b
}

// signal records that q is Ready (ok) or that its placement ended before.
// Each new holder signals once.
func (b *readyBarrier) signal(q peer.ID, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ok {
		b.ready = append(b.ready, q)
		if len(b.ready) == 1 {
			close(b.any)
		}
	}
	if b.waiting--; b.waiting == 0 {
		close(b.all)
	}
}

// wait returns when every new holder has signalled, settle after the first
// one was Ready, or at bound, whichever comes first, with the holders
// Ready by then.
func (b *readyBarrier) wait(settle, bound time.Duration) []peer.ID {
	limit := time.NewTimer(bound)
	defer limit.Stop()
	select {
	case <-b.all:
	case <-limit.C:
	case <-b.any:
		t := time.NewTimer(settle)
		defer t.Stop()
		select {
		case <-b.all:
		case <-t.C:
		case <-limit.C:
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]peer.ID(nil), b.ready...)
}
