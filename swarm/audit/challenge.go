package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// The challenger's side (docs/RELIABILITY.md "Audits"): which holders are
// challenged about what, and how an answer is judged.

// Outcome is the result of one challenge.
type Outcome int

// Outcomes of a challenge.
const (
	// Passed: the holder proved it holds the chunk.
	Passed Outcome = iota
	// Failed: the holder answered that the chunk is missing, or answered a
	// wrong proof.
	Failed
	// Unknown: no answer in time, an error answer or a failed stream; the
	// holder is challenged again at a later round.
	Unknown
)

// String names the outcome for logs.
func (o Outcome) String() string {
	switch o {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// task is one challenge to send: a chunk of root, to p.
type task struct {
	root cid.Cid
	m    *chunk.Manifest
	p    peer.ID
}

// Round runs one audit round: for every content held here in full whose
// highest-ranked holder (as of the replicator's last round) is this member,
// it challenges each other connected holder about one chunk picked at
// random, at most Challenges in all and within the daily byte budget. A
// holder that fails is reported to the replicator.
func (a *Auditor) Round(ctx context.Context) {
	start := time.Now()
	a.count(func(s *Stats) { s.LastRound = start })
	tasks := a.plan(ctx)
	byPeer := map[peer.ID][]task{}
	for _, t := range tasks {
		byPeer[t.p] = append(byPeer[t.p], t)
	}
	var wg sync.WaitGroup
	for p, ts := range byPeer {
		wg.Go(func() { a.challengePeer(ctx, p, ts) })
	}
	wg.Wait()
	a.log.Debug("audit round done", "challenges", len(tasks), "took", time.Since(start))
}

// plan lists the challenges of a round, shuffled and cut to the bound.
func (a *Auditor) plan(ctx context.Context) []task {
	roots, err := a.store.Manifests(ctx)
	if err != nil {
		a.log.Warn("audit: listing contents", "err", err)
		return nil
	}
	self := a.host.ID()
	var out []task
	for _, root := range roots {
		h, ok := a.repl.KnownHolders(root)
		if !ok || len(h.Holders) < 2 || h.Holders[0] != self {
			continue // not surveyed yet, no other holder, or another member audits it
		}
		m, err := a.store.Manifest(ctx, root)
		if err != nil || m.Layout.Kind == chunk.LayoutErasure || len(m.Chunks) == 0 {
			continue // coded contents are held in shards, not audited here
		}
		if missing, err := a.store.Missing(ctx, root); err != nil || len(missing) > 0 {
			continue
		}
		for _, p := range h.Holders[1:] {
			if a.host.Network().Connectedness(p) == network.Connected {
				out = append(out, task{root: root, m: m, p: p})
			}
		}
	}
	a.mu.Lock()
	a.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	a.mu.Unlock()
	return out[:min(len(out), a.challenges)]
}

// challengePeer sends p its challenges on one stream, one at a time. After
// an unknown outcome the rest are left for a later round.
func (a *Auditor) challengePeer(ctx context.Context, p peer.ID, ts []task) {
	s, release, err := p2pstream.Open(ctx, a.host, p, a.slot.Get(), a.dial)
	if err != nil {
		a.count(func(s *Stats) { s.Sent++; s.Unknown++ })
		a.log.Info("audit: no stream to holder; unknown", "peer", p, "err", err)
		return
	}
	defer release()
	c := proto.NewCodec(s)
	for i, t := range ts {
		out, why := a.challenge(ctx, s, c, uint64(i+1), t)
		if errors.Is(why, errBudget) {
			a.log.Info("audit: daily byte budget spent; the rest waits", "peer", p)
			break
		}
		if errors.Is(why, errSkipped) {
			continue
		}
		a.count(func(st *Stats) {
			st.Sent++
			switch out {
			case Passed:
				st.Passed++
			case Failed:
				st.Failed++
			default:
				st.Unknown++
			}
		})
		switch out {
		case Failed:
			a.log.Warn("holder failed an audit; placing the content anew", "cid", t.root, "peer", p, "why", why)
			a.repl.AuditFailed(ctx, t.root, p)
		case Unknown:
			a.log.Info("audit unanswered; unknown, retried next round", "cid", t.root, "peer", p, "why", why)
			s.Reset()
			return
		}
	}
	_ = p2pstream.Send(c, &proto.Bye{})
	s.Close()
}

var (
	// errSkipped: nothing was sent: this member's own copy failed to read.
	errSkipped = errors.New("challenge skipped")
	// errBudget: nothing was sent: the daily byte budget is spent.
	errBudget = errors.New("daily audit byte budget spent")
)

// challenge sends one challenge about a random chunk of t.root and judges
// the answer against this member's own copy, read through the store's
// verifying read (a lost or corrupt copy here is so found too, and the
// challenge skipped).
func (a *Auditor) challenge(ctx context.Context, s network.Stream, c *proto.Codec, id uint64, t task) (Outcome, error) {
	a.mu.Lock()
	ref := t.m.Chunks[a.rng.IntN(len(t.m.Chunks))]
	a.mu.Unlock()
	if !a.spend(int64(ref.Length)) {
		return Unknown, errBudget
	}
	data, err := a.store.GetChunk(ctx, ref.CID)
	if err != nil {
		a.log.Warn("audit: reading this member's own copy failed; it will be fetched again", "cid", t.root, "chunk", ref.CID, "err", err)
		return Unknown, errSkipped
	}
	nonce := make([]byte, proto.AuditNonceSize)
	if _, err := rand.Read(nonce); err != nil {
		return Unknown, errSkipped
	}
	want := proto.AuditProof(nonce, data)
	_ = s.SetDeadline(time.Now().Add(a.timeout))
	if err := p2pstream.Send(c, &proto.AuditRequest{ID: id, Root: t.root, Chunk: ref.CID, Nonce: nonce}); err != nil {
		return Unknown, fmt.Errorf("sending challenge: %w", err)
	}
	msg, err := c.Recv()
	if err != nil {
		return Unknown, fmt.Errorf("receiving answer: %w", err)
	}
	switch m := msg.(type) {
	case *proto.AuditResponse:
		if m.ID != id {
			return Unknown, fmt.Errorf("answer to challenge %d, not %d: %w", m.ID, id, proto.ErrInvalid)
		}
		if m.State == proto.AuditMissing {
			return Failed, fmt.Errorf("chunk %s missing", ref.CID)
		}
		if !bytes.Equal(m.Proof, want) {
			return Failed, fmt.Errorf("wrong proof for chunk %s", ref.CID)
		}
		return Passed, nil
	case *proto.ErrorResponse:
		return Unknown, fmt.Errorf("holder answered %s: %s", m.Code, m.Message)
	}
	return Unknown, fmt.Errorf("unexpected %s: %w", msg.Type(), proto.ErrInvalid)
}
