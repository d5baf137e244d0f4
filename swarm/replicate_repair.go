package swarm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
)

// The repair round (docs/REPLICATION.md "Repair"), where and drain.

// surveyTimeout bounds the have-survey of one member. A member that does
// not answer in time is treated as gone from then on and disconnected (a
// QUIC connection to a killed process only times out after 30 s).
const surveyTimeout = 5 * time.Second

// drainParallel bounds the contents placed at once by Drain.
const drainParallel = 8

// haveState is what a member holds of one content.
type haveState int

const (
	haveNone haveState = iota
	havePartial
	haveComplete
)

// survey asks every connected storage member (HaveRequests pipelined on
// one exchange stream each) what it holds of roots.
func (r *Replicator) survey(ctx context.Context, pl policy, roots []cid.Cid) map[peer.ID]map[string]haveState {
	out := map[peer.ID]map[string]haveState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range pl.storagePeers() {
		if !r.connected(p) {
			continue
		}
		wg.Go(func() {
			st, err := r.haves(ctx, p, roots)
			if err != nil {
				r.log.Debug("survey failed", "peer", p, "err", err)
				if ctx.Err() == nil {
					r.unreachable(p)
				}
				return
			}
			r.mu.Lock()
			delete(r.gone, p)
			r.mu.Unlock()
			mu.Lock()
			out[p] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// unreachable records that p did not answer and closes its connections,
// so that it counts as gone since now.
func (r *Replicator) unreachable(p peer.ID) {
	r.mu.Lock()
	if _, ok := r.gone[p]; !ok {
		r.gone[p] = time.Now()
	}
	r.mu.Unlock()
	r.log.Info("member did not answer; disconnecting", "peer", p)
	_ = r.host.Network().ClosePeer(p)
}

// haves asks p what it holds of each of roots on one exchange stream.
func (r *Replicator) haves(ctx context.Context, p peer.ID, roots []cid.Cid) (map[string]haveState, error) {
	pid := r.x.Protocol()
	if pid == "" {
		return nil, ErrNoSwarm
	}
	ctx, cancel := context.WithTimeout(ctx, surveyTimeout)
	defer cancel()
	s, err := r.host.NewStream(ctx, p, pid)
	if err != nil {
		return nil, fmt.Errorf("opening exchange stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(surveyTimeout))
	c := proto.NewCodec(s)
	errc := make(chan error, 1)
	go func() {
		for i, root := range roots {
			if err := c.Send(&proto.HaveRequest{ID: uint64(i + 1), Root: root}); err != nil {
				errc <- err
				return
			}
		}
		if err := c.Send(&proto.Bye{}); err != nil {
			errc <- err
			return
		}
		errc <- c.Flush()
	}()
	out := make(map[string]haveState, len(roots))
	for range roots {
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			return nil, fmt.Errorf("surveying %s: %w", p, err)
		}
		switch m := msg.(type) {
		case *proto.HaveResponse:
			if m.ID == 0 || m.ID > uint64(len(roots)) || !m.Root.Equals(roots[m.ID-1]) {
				s.Reset()
				return nil, fmt.Errorf("surveying %s: answer to request %d not sent: %w", p, m.ID, proto.ErrInvalid)
			}
			st := havePartial
			if m.Complete {
				st = haveComplete
			}
			out[m.Root.KeyString()] = st
		case *proto.ErrorResponse:
		default:
			s.Reset()
			return nil, fmt.Errorf("surveying %s: unexpected %s: %w", p, msg.Type(), proto.ErrInvalid)
		}
	}
	if err := <-errc; err != nil {
		s.Reset()
		return nil, fmt.Errorf("surveying %s: %w", p, err)
	}
	s.Close()
	return out, nil
}

// complete reports whether root is held here in full.
func (r *Replicator) complete(ctx context.Context, root cid.Cid) bool {
	missing, err := r.store.Missing(ctx, root)
	return err == nil && len(missing) == 0
}

// Holders is the answer of Where.
type Holders struct {
	Root    cid.Cid
	Holders []peer.ID // storage members holding a verified full copy
	Target  int       // the swarm's `copies`
	Min     int       // the swarm's `copies_min`
	// Unreachable counts the other storage members that did not answer
	// (not connected, or no reply): the count may be higher than Holders.
	Unreachable int
}

// Where asks the connected storage members (and looks here) which hold a
// verified full copy of root.
func (r *Replicator) Where(ctx context.Context, root cid.Cid) (Holders, error) {
	if err := isManifest(root); err != nil {
		return Holders{}, err
	}
	pl, ok := r.currentPolicy()
	if !ok {
		return Holders{}, fmt.Errorf("where %s: %w", root, ErrNoSwarm)
	}
	out := Holders{Root: root, Target: pl.copies, Min: pl.min}
	if pl.storage && r.complete(ctx, root) {
		out.Holders = append(out.Holders, pl.self)
	}
	states := r.survey(ctx, pl, []cid.Cid{root})
	for p, st := range states {
		if st[root.KeyString()] == haveComplete {
			out.Holders = append(out.Holders, p)
		}
	}
	out.Unreachable = len(pl.storagePeers()) - len(states)
	rank(root, out.Holders)
	return out, nil
}

// KnownHolders answers Where from what the last repair round saw, without
// asking anyone; ok is false when root was not surveyed yet.
func (r *Replicator) KnownHolders(root cid.Cid) (h Holders, ok bool) {
	pl, ok := r.currentPolicy()
	if !ok {
		return Holders{}, false
	}
	r.mu.Lock()
	known, ok := r.known[root.KeyString()]
	r.mu.Unlock()
	if !ok {
		return Holders{}, false
	}
	h = Holders{Root: root, Target: pl.copies, Min: pl.min}
	for p := range known {
		h.Holders = append(h.Holders, p)
	}
	rank(root, h.Holders)
	return h, true
}

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
			r.resume(pl, root)
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
		go r.place(r.background(), pl, root, need, skip, live, false, &placement{changed: make(chan struct{}, 1), bytes: map[string]int64{}})
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
func (r *Replicator) resume(pl policy, root cid.Cid) {
	r.mu.Lock()
	busy := r.fetching[root.KeyString()] > 0
	r.mu.Unlock()
	if busy {
		return
	}
	done := r.busyFetching(root)
	go func() {
		defer done()
		ctx := r.background()
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
	}()
}

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
		need := pl.copies - len(others)
		if need <= 0 {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			p := &placement{changed: make(chan struct{}, 1), bytes: map[string]int64{}}
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
