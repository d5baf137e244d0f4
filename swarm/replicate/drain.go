package replicate

import (
	"context"
	"fmt"
	"slices"
	"strings"
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
	var why []string // the members that could not take a copy, and why, once each
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
				w := p.why(pl)
				mu.Lock()
				short++
				if w != "" && !slices.Contains(why, w) {
					why = append(why, w)
				}
				mu.Unlock()
			}
			r.log.Info("drained", "cid", root, "copies_elsewhere", n, "target", pl.copies)
		})
	}
	wg.Wait()
	if short > 0 {
		reason := ""
		if len(why) > 0 {
			reason = " (" + strings.Join(why[:min(len(why), 4)], "; ") + ")"
		}
		return fmt.Errorf("draining: %d contents would have fewer than copies_min (%d) copies elsewhere%s: %w", short, pl.min, reason, ErrBelowMin)
	}
	return nil
}
