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
	var held, coded []cid.Cid
	for _, root := range roots {
		if r.tombs.removed(root) {
			r.dropRemoved(ctx, root)
			continue
		}
		if r.codedRoot(ctx, root) {
			coded = append(coded, root)
			continue
		}
		if r.complete(ctx, root) {
			held = append(held, root)
		} else if pl.storage {
			r.resume(ctx, root)
		}
	}
	sum := Summary{Contents: len(held), LastRound: start}
	sum.Coded, sum.Survives = r.countCoded(ctx, coded)
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

// check counts the copies of one content (decide.go says what to do) and
// acts: places anew when below `copies` (if this member is the one to act),
// trims its own copy when above.
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
	over, fetching := r.over[k], r.fetching[k] > 0
	r.mu.Unlock()

	v := decide(pl, r.every, root, seen{live: live, grace: grace, pending: npending, fetching: fetching, overSince: over}, time.Now())
	switch v.level {
	case belowMin:
		sum.BelowMin++
		sum.BelowTarget++
	case belowTarget:
		sum.BelowTarget++
	default:
		sum.AtTarget++
	}
	if npending > 0 {
		sum.InRepair++
	}
	if r.stillNoRoom(k, v.level) {
		sum.NoRoom++
	}
	r.mu.Lock()
	if v.overSince.IsZero() {
		delete(r.over, k)
	} else {
		r.over[k] = v.overSince
	}
	if v.trim {
		delete(r.known, k)
	}
	r.mu.Unlock()
	switch {
	case v.place > 0:
		r.log.Info("content below target; placing", "cid", root, "copies", len(live)+grace, "target", pl.copies, "placing", v.place, "in_grace", grace)
		r.background(ctx, func(ctx context.Context) {
			r.place(ctx, pl, root, v.place, skip, live, false, newPlacement())
		})
	case v.trim:
		if err := r.store.Remove(ctx, root); err != nil && !errors.Is(err, chunk.ErrNotFound) {
			r.log.Warn("trimming an extra copy", "cid", root, "err", err)
			return
		}
		r.log.Info("extra copy trimmed", "cid", root, "copies", len(live)-1, "target", pl.copies)
	}
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
			if isNoSpace(err) {
				r.dropPartial(ctx, root, err)
			}
			return
		}
		r.log.Info("partial copy completed", "cid", root)
	}) {
		done()
	}
}
