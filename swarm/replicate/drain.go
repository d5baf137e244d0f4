package replicate

import (
	"context"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Drain (docs/REPLICATION.md "Leaving").

// drainParallel bounds the contents placed at once by Drain.
const drainParallel = 8

// Drain makes sure every content held here has `copies` verified copies on
// other storage members, placing new ones where needed, before this member
// leaves. It fails when some content cannot reach copies_min elsewhere.
func (r *Replicator) Drain(ctx context.Context) error {
	pl, ok := r.currentPolicy()
	if !ok {
		return nil
	}
	roots, err := r.store.Manifests(ctx)
	if err != nil {
		return fmt.Errorf("draining: %w", err)
	}
	var held []cid.Cid
	for _, root := range roots {
		if !r.tombs.removed(root) && r.complete(ctx, root) {
			held = append(held, root)
		}
	}
	if len(held) == 0 {
		return nil
	}
	states := r.survey(ctx, pl, held)
	var wg sync.WaitGroup
	var mu sync.Mutex
	short := 0
	sem := make(chan struct{}, drainParallel)
	for _, root := range held {
		k := root.KeyString()
		skip := map[peer.ID]bool{pl.self: true}
		var others []peer.ID
		for p, st := range states {
			if st[k] == haveComplete {
				others = append(others, p)
				skip[p] = true
			}
		}
		need := drainNeed(pl, others)
		if need == 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p := newPlacement()
			r.place(ctx, pl, root, need, skip, others, false, p)
			p.mu.Lock()
			n := len(others) + len(p.done)
			p.mu.Unlock()
			if n < pl.min {
				mu.Lock()
				short++
				mu.Unlock()
			}
			r.log.Info("drained", "cid", root, "copies_elsewhere", n, "target", pl.copies)
		})
	}
	wg.Wait()
	if short > 0 {
		return fmt.Errorf("draining: %d contents would have fewer than copies_min (%d) copies elsewhere: %w", short, pl.min, ErrBelowMin)
	}
	return nil
}
