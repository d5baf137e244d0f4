package replicate

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
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Placement of a coded content (docs/ERASURE.md "Put"): shard set i goes
// to the i-th candidate in placement order, each set to its own member;
// the uploader serves the shards by coding its chunks on demand, so it
// sends n/k × the content; the put succeeds once S distinct members hold
// distinct sets, and the other sets are placed in the background.

// ErrTooFewMembers is returned by a coded put when fewer storage members
// are live than its success threshold needs.
var ErrTooFewMembers = errors.New("swarm: too few live storage members for the erasure scheme")

// successOf is the success threshold S of a coded manifest under the
// policy: k + clamp(copies_min − 1, 1, m) (rules.Replication.Thresholds,
// computed from the manifest's own layout so that a content coded under
// earlier rules keeps its scheme).
func successOf(pl policy, m *chunk.Manifest) int {
	k, par := m.Layout.K, m.Layout.M
	return k + min(max(pl.def.Replication.CopiesMin-1, 1), par)
}

// codedRoot reports whether root is a coded content recorded here: the
// repair round checks those with checkCoded (coded_repair.go) rather than
// fetching or copying them whole.
func (r *Replicator) codedRoot(ctx context.Context, root cid.Cid) bool {
	m, err := r.store.Manifest(ctx, root)
	return err == nil && m.Coded()
}

// setPlacement is the outcome so far of the placement of one coded content.
type setPlacement struct {
	mu      sync.Mutex
	holders map[int]peer.ID // set → member that answered Done
	bytes   map[string]int64
	noRoom  bool
	changed chan struct{}
}

// seedCoded is Seed for a coded content. It returns the number of sets
// placed when at least the success threshold is.
func (r *Replicator) seedCoded(ctx context.Context, pl policy, root cid.Cid, m *chunk.Manifest, progress func(SeedProgress)) (int, error) {
	cx, ok := r.x.(codedExchange)
	if !ok {
		return 0, fmt.Errorf("seeding %s: the exchange cannot serve shards", root)
	}
	n, need := m.Layout.K+m.Layout.M, successOf(pl, m)
	// The uploader keeps its whole copy and holds no set: every set goes
	// to another member (docs/ERASURE.md "Put"), in the order of the
	// first chunk so that a new version lands where the old one is.
	cands := r.candidates(pl, setOrderKey(m, root), map[peer.ID]bool{pl.self: true}, nil)
	if len(cands) < need {
		return 0, fmt.Errorf("erasure %d+%d: %d live storage members, a coded put needs %d (success threshold); add members or lower copies_min: %w",
			m.Layout.K, m.Layout.M, len(cands), need, ErrTooFewMembers)
	}
	enc, err := m.Encode()
	if err != nil {
		return 0, fmt.Errorf("seeding %s: %w", root, err)
	}
	var total int64
	for _, c := range m.Chunks {
		total += int64(chunk.ShardSize(int(c.Length), m.Layout.K))
	}
	sp := &setPlacement{holders: map[int]peer.ID{}, bytes: map[string]int64{}, changed: make(chan struct{}, 1)}
	release := cx.ServeCoded(m)
	finished := make(chan struct{})
	if !r.background(ctx, func(ctx context.Context) {
		defer close(finished)
		defer release()
		r.placeSets(ctx, root, enc, setsUpTo(n), cands, sp)
	}) {
		release()
		close(finished)
	}
	report := func() int {
		sp.mu.Lock()
		defer sp.mu.Unlock()
		done := len(sp.holders)
		if progress != nil {
			p := SeedProgress{Total: total, Holders: map[string]int64{}, Done: done}
			for k, v := range sp.bytes {
				p.Holders[k] = v
			}
			progress(p)
		}
		return done
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if done := report(); done >= need {
			return done, nil
		}
		select {
		case <-finished:
			done := report()
			if done >= need {
				return done, nil
			}
			sp.mu.Lock()
			noRoom := sp.noRoom
			sp.mu.Unlock()
			why := "members failed"
			if noRoom {
				why = "no room on some members"
			}
			return done, fmt.Errorf("seeding %s: %d of %d shard sets placed (success threshold %d; %s): %w", root, done, n, need, why, ErrBelowMin)
		case <-sp.changed:
		case <-t.C:
		case <-ctx.Done():
			return report(), fmt.Errorf("seeding %s: %w", root, ctx.Err())
		}
	}
}

// setsUpTo lists the sets 0 … n−1.
func setsUpTo(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// placeSets places sets[q] on cands[q], a failed set on the next spare
// candidate, until every set is placed or no candidate is left.
func (r *Replicator) placeSets(ctx context.Context, root cid.Cid, enc []byte, sets []int, cands []peer.ID, sp *setPlacement) {
	type result struct {
		set int
		p   peer.ID
		err error
	}
	results := make(chan result)
	launch := func(i int, q peer.ID) {
		undo := r.addPending(root, q)
		go func() {
			defer undo()
			err := r.placeSetOn(ctx, q, root, enc, i, func(b int64) {
				sp.mu.Lock()
				sp.bytes[q.String()] = b
				sp.mu.Unlock()
				poke(sp.changed)
			})
			results <- result{i, q, err}
		}()
	}
	first := min(len(sets), len(cands))
	for q := range first {
		launch(sets[q], cands[q])
	}
	spare, running := cands[first:], first
	for running > 0 {
		res := <-results
		running--
		if res.err == nil {
			r.log.Info("shard set placed", "cid", root, "set", res.set, "peer", res.p)
			sp.mu.Lock()
			sp.holders[res.set] = res.p
			sp.mu.Unlock()
			poke(sp.changed)
			continue
		}
		r.log.Info("shard set placement failed; trying the next member", "cid", root, "set", res.set, "peer", res.p, "err", res.err)
		if errors.Is(res.err, ErrNoRoom) {
			sp.mu.Lock()
			sp.noRoom = true
			sp.mu.Unlock()
			r.mu.Lock()
			r.noSpace[res.p] = time.Now()
			r.mu.Unlock()
		}
		if len(spare) > 0 && ctx.Err() == nil && !errors.Is(res.err, ErrRemoved) {
			launch(res.set, spare[0])
			spare = spare[1:]
			running++
		}
	}
	poke(sp.changed)
}

// placeSetOn asks p to hold shard set i of root and waits for its Done.
func (r *Replicator) placeSetOn(ctx context.Context, p peer.ID, root cid.Cid, enc []byte, i int, progress func(int64)) error {
	s, release, err := p2pstream.Open(ctx, r.host, p, r.slot.Get(), r.dial)
	if err != nil {
		return fmt.Errorf("placing set %d of %s on %s: %w", i, root, p, err)
	}
	defer release()
	c := proto.NewCodec(s)
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	if err := p2pstream.Send(c, &proto.PlaceRequest{ID: 1, Root: root, Manifest: enc, Shards: 1 << i}); err != nil {
		s.Reset()
		return fmt.Errorf("placing set %d of %s on %s: %w", i, root, p, err)
	}
	for {
		_ = s.SetReadDeadline(time.Now().Add(placeIdle))
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			return fmt.Errorf("placing set %d of %s on %s: %w", i, root, p, err)
		}
		switch m := msg.(type) {
		case *proto.PlaceStatus:
			progress(int64(m.Bytes))
			if m.State == proto.PlaceDone {
				_ = p2pstream.Send(c, &proto.Bye{})
				s.Close()
				return nil
			}
		case *proto.ErrorResponse:
			s.Close()
			switch m.Code {
			case proto.CodeNoSpace:
				return fmt.Errorf("placing set %d of %s on %s: %w: %s", i, root, p, ErrNoRoom, m.Message)
			case proto.CodeRemoved:
				return fmt.Errorf("placing set %d of %s on %s: %w", i, root, p, ErrRemoved)
			}
			return fmt.Errorf("placing set %d of %s on %s: %w", i, root, p, m)
		default:
			s.Reset()
			return fmt.Errorf("placing set %d of %s on %s: unexpected %s: %w", i, root, p, msg.Type(), proto.ErrInvalid)
		}
	}
}
