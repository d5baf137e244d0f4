package replicate

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Queries (docs/REPLICATION.md "Repair", "Where"): what the storage
// members hold.

// Bounds of a survey. A survey is paged: the answers to each page of
// surveyPage roots must arrive within surveyPageTimeout of the page before,
// so a large survey of a busy member takes as long as it takes while it
// progresses, and only a member that stops answering is given up on. Giving
// up says nothing about whether the member is alive (that is liveness,
// swarm/membership/liveness.go): the roots it did not answer for are
// unknown, never "does not have" (docs/REPLICATION.md "Repair").
const (
	surveyPage        = 1000
	surveyPageTimeout = 10 * time.Second
)

// haveState is what a member holds of one content. A root missing from a
// member's answers is unknown.
type haveState int

const (
	haveNone haveState = iota
	havePartial
	haveComplete
)

// survey asks every connected storage member (HaveRequests pipelined on
// one exchange stream each) what it holds of roots. A member's map holds
// the roots it answered for; a member that could not be asked is absent.
func (r *Replicator) survey(ctx context.Context, pl policy, roots []cid.Cid) map[peer.ID]map[string]haveState {
	out := map[peer.ID]map[string]haveState{}
	// The contents over target at their last check here: the requests
	// say so, and a holder that settled one checks it again (it may be
	// the one to trim and not know it).
	r.mu.Lock()
	over := make(map[string]bool, len(r.over))
	for k := range r.over {
		over[k] = true
	}
	r.mu.Unlock()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range pl.storagePeers() {
		if !r.connected(p) {
			continue
		}
		wg.Go(func() {
			st, err := r.haves(ctx, p, roots, over)
			if err != nil {
				r.log.Info("survey incomplete; the contents not answered for are unknown", "peer", p,
					"answered", len(st), "asked", len(roots), "err", err)
			}
			if len(st) == 0 {
				return
			}
			mu.Lock()
			out[p] = st
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// haves asks p what it holds of each of roots on one exchange stream,
// marking the requests of the roots in over (HaveRequest.Over). On an
// error it returns the answers received so far with it.
func (r *Replicator) haves(ctx context.Context, p peer.ID, roots []cid.Cid, over map[string]bool) (map[string]haveState, error) {
	pageTimeout := r.pageTimeout
	s, release, err := p2pstream.Open(ctx, r.host, p, r.x.Protocol(), r.dial)
	if err != nil {
		return nil, err
	}
	defer release()
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(pageTimeout))
	c := proto.NewCodec(s)
	errc := make(chan error, 1)
	go func() {
		for i, root := range roots {
			if err := c.Send(&proto.HaveRequest{ID: uint64(i + 1), Root: root, Over: over[root.KeyString()]}); err != nil {
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
	fail := func(err error) (map[string]haveState, error) {
		s.Reset()
		<-errc
		return out, fmt.Errorf("surveying %s: %w", p, err)
	}
	for i := range roots {
		if i > 0 && i%r.pageSize == 0 {
			// A page answered: the next one gets its own deadline.
			_ = s.SetDeadline(time.Now().Add(pageTimeout))
		}
		msg, err := c.Recv()
		if err != nil {
			return fail(err)
		}
		switch m := msg.(type) {
		case *proto.HaveResponse:
			if m.ID == 0 || m.ID > uint64(len(roots)) || !m.Root.Equals(roots[m.ID-1]) {
				return fail(fmt.Errorf("answer to request %d not sent: %w", m.ID, proto.ErrInvalid))
			}
			st := havePartial
			if m.Complete {
				st = haveComplete
			}
			out[m.Root.KeyString()] = st
		case *proto.ErrorResponse:
			if m.ID == 0 || m.ID > uint64(len(roots)) {
				return fail(fmt.Errorf("answer to request %d not sent: %w", m.ID, proto.ErrInvalid))
			}
			// NotFound: the member answered that it does not hold the
			// content. Any other error (busy, internal) leaves it unknown.
			if m.Code == proto.CodeNotFound {
				out[roots[m.ID-1].KeyString()] = haveNone
			}
		default:
			return fail(fmt.Errorf("unexpected %s: %w", msg.Type(), proto.ErrInvalid))
		}
	}
	if err := <-errc; err != nil {
		s.Reset()
		return out, fmt.Errorf("surveying %s: %w", p, err)
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
	var holders []peer.ID
	if ok {
		holders = append(holders, known.holders...)
	}
	r.mu.Unlock()
	if !ok {
		return Holders{}, false
	}
	h = Holders{Root: root, Target: pl.copies, Min: pl.min}
	// The kept state counts the other members; this one holds it when its
	// store has it whole, as Where says.
	if pl.storage && r.complete(context.Background(), root) {
		h.Holders = append(h.Holders, pl.self)
	}
	h.Holders = append(h.Holders, holders...)
	rank(root, h.Holders)
	return h, true
}
