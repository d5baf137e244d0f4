package replicate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Where for a coded content (docs/ERASURE.md "Visibility"): which members
// hold which shard sets, the happiness h and how many more member losses
// the content survives.

// CodedHolders is the answer of WhereCoded.
type CodedHolders struct {
	Root cid.Cid
	// K and M are the content's scheme; Success its success threshold.
	K, M, Success int
	// Sets maps every member answering with at least one set (or a whole
	// copy, listed as every set) to its sets, in increasing order.
	Sets map[peer.ID][]int
	// Happiness is h: the size of a largest matching of sets to distinct
	// members holding them.
	Happiness int
	// Placed counts the distinct sets held.
	Placed int
	// Unreachable counts the storage members that did not answer.
	Unreachable int
}

// Survives is h − k: how many more member losses the content survives.
func (h CodedHolders) Survives() int { return h.Happiness - h.K }

// WhereCoded asks the connected storage members (and looks here) which
// shard sets of root they hold. ok is false when root is not a coded
// content as far as this member and the members asked know.
func (r *Replicator) WhereCoded(ctx context.Context, root cid.Cid) (h CodedHolders, ok bool, err error) {
	if err := isManifest(root); err != nil {
		return CodedHolders{}, false, err
	}
	pl, okp := r.currentPolicy()
	if !okp {
		return CodedHolders{}, false, fmt.Errorf("where %s: %w", root, ErrNoSwarm)
	}
	m, merr := r.store.Manifest(ctx, root)
	if merr == nil && !m.Coded() {
		return CodedHolders{}, false, nil
	}
	answers := r.surveySets(ctx, pl, root)
	if merr != nil {
		for p, a := range answers {
			if a != 0 {
				if m, merr = r.x.FetchManifest(ctx, p, root); merr == nil {
					break
				}
			}
		}
		if merr != nil || !m.Coded() {
			return CodedHolders{}, false, nil
		}
	}
	n := m.Layout.K + m.Layout.M
	h = CodedHolders{Root: root, K: m.Layout.K, M: m.Layout.M, Success: successOf(pl, m), Sets: map[peer.ID][]int{}}
	h.Unreachable = len(pl.storagePeers()) - len(answers)
	if pl.storage {
		if r.complete(ctx, root) {
			answers[pl.self] = ^uint32(0)
		} else if held, err := r.store.HeldShards(ctx, root); err == nil && len(held) > 0 {
			var mask uint32
			for _, i := range held {
				mask |= 1 << i
			}
			answers[pl.self] = mask
		}
	}
	placed := map[int]bool{}
	for p, mask := range answers {
		var sets []int
		for i := range n {
			if mask&(1<<i) != 0 {
				sets = append(sets, i)
				placed[i] = true
			}
		}
		if len(sets) > 0 {
			h.Sets[p] = sets
		}
	}
	h.Placed = len(placed)
	h.Happiness = happiness(h.Sets, n)
	return h, true, nil
}

// happiness is the size of a largest matching between sets and distinct
// members (Tahoe-LAFS servers-of-happiness), by augmenting paths.
func happiness(sets map[peer.ID][]int, n int) int {
	owner := make([]peer.ID, n) // set → member matched to it
	var try func(p peer.ID, seen []bool) bool
	try = func(p peer.ID, seen []bool) bool {
		for _, i := range sets[p] {
			if seen[i] {
				continue
			}
			seen[i] = true
			if owner[i] == "" || try(owner[i], seen) {
				owner[i] = p
				return true
			}
		}
		return false
	}
	h := 0
	for p := range sets {
		if try(p, make([]bool, n)) {
			h++
		}
	}
	return h
}

// surveySets asks every connected storage member which shard sets of root
// it holds: a HaveRequest each, answered with Shards (every bit for a
// whole copy). Members that answer an error hold none (mask 0).
func (r *Replicator) surveySets(ctx context.Context, pl policy, root cid.Cid) map[peer.ID]uint32 {
	out := map[peer.ID]uint32{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range pl.storagePeers() {
		if !r.connected(p) {
			continue
		}
		wg.Go(func() {
			mask, err := r.askSets(ctx, p, root)
			if err != nil {
				r.log.Debug("shard survey failed", "peer", p, "err", err)
				return
			}
			mu.Lock()
			out[p] = mask
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// askSets asks p for the shard sets of root it holds.
func (r *Replicator) askSets(ctx context.Context, p peer.ID, root cid.Cid) (uint32, error) {
	ctx, cancel := context.WithTimeout(ctx, r.pageTimeout)
	defer cancel()
	s, release, err := p2pstream.Open(ctx, r.host, p, r.x.Protocol(), r.pageTimeout)
	if err != nil {
		return 0, err
	}
	defer release()
	_ = s.SetDeadline(time.Now().Add(r.pageTimeout))
	c := proto.NewCodec(s)
	if err := p2pstream.Send(c, &proto.HaveRequest{ID: 1, Root: root}); err != nil {
		s.Reset()
		return 0, err
	}
	msg, err := c.Recv()
	if err != nil {
		s.Reset()
		return 0, fmt.Errorf("asking %s for shard sets: %w", p, err)
	}
	_ = p2pstream.Send(c, &proto.Bye{})
	s.Close()
	switch m := msg.(type) {
	case *proto.HaveResponse:
		if m.Complete {
			return ^uint32(0), nil
		}
		return m.Shards, nil
	case *proto.ErrorResponse:
		return 0, nil
	}
	return 0, fmt.Errorf("asking %s for shard sets: unexpected %s: %w", p, msg.Type(), proto.ErrInvalid)
}

// Ranked returns the members of sets ordered by their first set, then by
// peer ID: a stable order for where's answer.
func Ranked(root cid.Cid, sets map[peer.ID][]int) []peer.ID {
	out := make([]peer.ID, 0, len(sets))
	for p := range sets {
		out = append(out, p)
	}
	rank(root, out)
	slices.SortStableFunc(out, func(a, b peer.ID) int { return sets[a][0] - sets[b][0] })
	return out
}
