package membership_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// Versions offered at once are adopted one at a time, each checked against
// the one adopted before it: version 2 and a version 3 that follows
// version 1, offered together, end at version 3, never rolled back to 2;
// and the same document offered by several members at once is adopted
// once, the others told it is not new. Storing version 2 is made slow so
// that, were offers not serialized, both would pass against version 1 and
// version 2 would land last.
func TestOffersAdoptInOrder(t *testing.T) {
	hs := swarmtest.Hosts(t, 1)
	signer, v1signed := newDefinition(t, "adopt", hs, false)
	v1, err := rules.Verify(v1signed)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := signer.Sign(v1.Next(), v1)
	if err != nil {
		t.Fatal(err)
	}

	var adoptedV2 atomic.Int32
	m := slowToStoreV2(hs[0], nil)
	m.OnAdopt(func(d *rules.Definition) {
		if d != nil && d.Version == 2 {
			adoptedV2.Add(1)
		}
	})
	ctx := context.Background()
	if _, err := m.Join(ctx, v1signed); err != nil {
		t.Fatal(err)
	}

	// The same version 2 from four members at once.
	var wg sync.WaitGroup
	var news atomic.Int32
	for range 4 {
		wg.Go(func() {
			adopted, err := m.Offer(ctx, v2)
			if err != nil {
				t.Errorf("offering the adopted document again: %v", err)
			}
			if adopted {
				news.Add(1)
			}
		})
	}
	wg.Wait()
	if news.Load() != 1 || adoptedV2.Load() != 1 {
		t.Fatalf("version 2 offered 4 times at once: %d offers said adopted, hooks ran %d times; want 1 and 1",
			news.Load(), adoptedV2.Load())
	}

	// Version 3 (following version 1) while a second member's version 2
	// is being stored: m2 starts again from version 1.
	hs2 := swarmtest.Hosts(t, 1)
	signer2, w1 := newDefinition(t, "adopt2", hs2, false)
	d1, err := rules.Verify(w1)
	if err != nil {
		t.Fatal(err)
	}
	next := func(version int64) []byte {
		d := d1.Next()
		d.Version = version
		signed, err := signer2.Sign(d, d1)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	w2, w3 := next(2), next(3)
	storing := make(chan struct{}, 1)
	m2 := slowToStoreV2(hs2[0], storing)
	if _, err := m2.Join(ctx, w1); err != nil {
		t.Fatal(err)
	}
	var err2 error
	wg.Go(func() { _, err2 = m2.Offer(ctx, w2) })
	<-storing // version 2 passed against version 1 and is being stored
	if _, err := m2.Offer(ctx, w3); err != nil {
		t.Fatalf("offering version 3: %v", err)
	}
	wg.Wait()
	if err2 != nil {
		t.Fatalf("offering version 2: %v", err2)
	}
	if got := m2.Current().Version; got != 3 {
		t.Fatalf("versions 2 and 3 offered at once left version %d adopted, want 3", got)
	}
}

// slowToStoreV2 returns a membership of h that takes 300 ms to store
// version 2 of a definition, telling storing (if not nil) when it starts.
func slowToStoreV2(h swarmtest.Member, storing chan<- struct{}) *membership.Membership {
	return membership.New(h.Host, h.Gater, membership.Options{
		Logger: slog.New(slog.DiscardHandler),
		Persist: func(d *rules.Definition) error {
			if d.Version == 2 {
				if storing != nil {
					select {
					case storing <- struct{}{}:
					default:
					}
				}
				time.Sleep(300 * time.Millisecond)
			}
			return nil
		},
	})
}
