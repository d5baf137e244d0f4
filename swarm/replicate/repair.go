package replicate

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// The repair round (docs/REPLICATION.md "Repair"): counting and acting.

// round is one repair round: spread removal records, apply them, survey the
// members about every content held here, and act where this member is the
// one to (docs/REPLICATION.md "Repair").
func (r *Replicator) round(ctx context.Context) {
	pl, ok := r.currentPolicy()
	if !ok {
		return
	}
	start := time.Now()
	r.spreadRemovals(ctx, pl)
	roots, err := r.store.Manifests(ctx)
	if err != nil {
		r.log.Warn("repair: listing contents", "err", err)
		return
	}
	var held []cid.Cid
	for _, root := range roots {
		if r.tombs.removed(root) {
			r.dropRemoved(ctx, root)
			continue
		}
		if r.complete(ctx, root) {
			held = append(held, root)
		} else if pl.storage {
			r.resume(ctx, root)
		}
	}
	sum := Summary{Contents: len(held), LastRound: start}
	if len(held) == 0 {
		r.setSummary(sum)
		return
	}
	states := r.survey(ctx, pl, held)
	for _, root := range held {
		r.check(ctx, pl, root, states, &sum)
	}
	r.setSummary(sum)
}

func (r *Replicator) setSummary(s Summary) {
	r.mu.Lock()
	r.summary = s
	r.mu.Unlock()
}

// check counts the copies of one content and acts: places anew when below
// `copies` (if this member is the one to act), trims when above.
func (r *Replicator) check(ctx context.Context, pl policy, root cid.Cid, states map[peer.ID]map[string]haveState, sum *Summary) {
	k := root.KeyString()
	var live []peer.ID
	if pl.storage {
		live = append(live, pl.self)
	}
	skip := map[peer.ID]bool{pl.self: true}
	for p, st := range states {
		switch st[k] {
		case haveComplete:
			live = append(live, p)
			skip[p] = true
		}
	}
	r.mu.Lock()
	prev := r.known[k]
	next := map[peer.ID]bool{}
	for _, p := range live {
		next[p] = true
	}
	// A holder that went away less than repair_after ago still counts.
	grace := 0
	for p := range prev {
		if _, failed := r.gone[p]; next[p] || !pl.isStorage(p) || (r.connected(p) && !failed) {
			continue // a holder, or answered without holding it
		}
		if r.inGrace(p, pl.grace) {
			grace++
			next[p] = true
			skip[p] = true
		}
	}
	r.known[k] = next
	pending := r.pending[k]
	npending := len(pending)
	for p := range pending {
		skip[p] = true
	}
	noRoom := r.noRoom[k]
	r.mu.Unlock()

	count := len(live) + grace
	switch {
	case count < pl.min:
		sum.BelowMin++
		sum.BelowTarget++
	case count < pl.copies:
		sum.BelowTarget++
	default:
		sum.AtTarget++
	}
	if npending > 0 {
		sum.InRepair++
	}
	if noRoom {
		sum.NoRoom++
	}

	if count+npending < pl.copies {
		r.mu.Lock()
		delete(r.over, k)
		r.mu.Unlock()
		if !r.actsFor(pl, root, live) {
			return
		}
		need := pl.copies - count - npending
		r.log.Info("content below target; placing", "cid", root, "copies", count, "target", pl.copies, "placing", need, "in_grace", grace)
		r.background(ctx, func(ctx context.Context) {
			r.place(ctx, pl, root, need, skip, live, false, newPlacement())
		})
		return
	}
	r.trim(ctx, pl, root, live, grace, npending)
}

// actsFor reports whether this member is the one to place copies of root:
// the highest-ranked live storage holder, or, when no storage member holds
// it, any member holding it (a client that put it).
func (r *Replicator) actsFor(pl policy, root cid.Cid, live []peer.ID) bool {
	if len(live) == 0 {
		return true
	}
	return rank(root, append([]peer.ID(nil), live...))[0] == pl.self
}

// trim removes this member's copy of root when more than `copies` live
// storage members have held it for longer than repair_after (and three
// rounds) and this member is the lowest-ranked of them. Never below `copies`.
func (r *Replicator) trim(ctx context.Context, pl policy, root cid.Cid, live []peer.ID, grace, pending int) {
	k := root.KeyString()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !pl.storage || grace > 0 || pending > 0 || len(live)-1 < pl.copies || r.fetching[k] > 0 {
		delete(r.over, k)
		return
	}
	since, ok := r.over[k]
	if !ok {
		r.over[k] = time.Now()
		return
	}
	if time.Since(since) < max(pl.grace, 3*r.every) {
		return
	}
	ranked := rank(root, append([]peer.ID(nil), live...))
	if ranked[len(ranked)-1] != pl.self {
		return
	}
	delete(r.over, k)
	delete(r.known, k)
	if err := r.store.Remove(ctx, root); err != nil && !errors.Is(err, chunk.ErrNotFound) {
		r.log.Warn("trimming an extra copy", "cid", root, "err", err)
		return
	}
	r.log.Info("extra copy trimmed", "cid", root, "copies", len(live)-1, "target", pl.copies)
}

// resume completes a content held in part here (a placement interrupted by
// a restart), unless a fetch of it already runs.
func (r *Replicator) resume(ctx context.Context, root cid.Cid) {
	r.mu.Lock()
	busy := r.fetching[root.KeyString()] > 0
	r.mu.Unlock()
	if busy {
		return
	}
	done := r.busyFetching(root)
	if !r.background(ctx, func(ctx context.Context) {
		defer done()
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.slots }()
		if err := r.x.Fetch(ctx, root, nil); err != nil {
			r.log.Info("resuming a partial copy failed", "cid", root, "err", err)
			return
		}
		r.log.Info("partial copy completed", "cid", root)
	}) {
		done()
	}
}
