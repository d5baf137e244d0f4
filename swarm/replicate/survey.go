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

// surveyTimeout bounds the have-survey of one member. A member that does
// not answer in time is treated as gone from then on and disconnected (a
// QUIC connection to a killed process only times out after 30 s).
const surveyTimeout = 5 * time.Second

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
	ctx, cancel := context.WithTimeout(ctx, surveyTimeout)
	defer cancel()
	s, release, err := p2pstream.Open(ctx, r.host, p, r.x.Protocol(), surveyTimeout)
	if err != nil {
		return nil, err
	}
	defer release()
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
