package audit

import (
	"context"
	"errors"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// The holder's side (docs/RELIABILITY.md "Audits"): answering challenges
// through the store's verifying read, and sweeping a content found damaged.

const (
	// serveIdle bounds the wait for the next challenge on a served stream.
	serveIdle = 30 * time.Second
	// maxPerStream bounds the challenges answered on one stream (a round
	// sends at most Challenges, DefaultChallenges by default).
	maxPerStream = 256
	// serveWait bounds the wait for Run to take a served stream.
	serveWait = 5 * time.Second
)

// handle serves an audit stream under Run's context; a member serves one
// stream per challenger and maxServing in all, and resets the others.
func (a *Auditor) handle(s network.Stream) {
	from := s.Conn().RemotePeer()
	a.mu.Lock()
	busy := a.peers[from]
	if !busy {
		a.peers[from] = true
	}
	a.mu.Unlock()
	if busy {
		s.Reset()
		return
	}
	defer func() {
		a.mu.Lock()
		delete(a.peers, from)
		a.mu.Unlock()
	}()
	select {
	case a.serving <- struct{}{}:
		defer func() { <-a.serving }()
	default:
		s.Reset()
		return
	}
	wait, cancel := context.WithTimeout(context.Background(), serveWait)
	defer cancel()
	if !a.tasks.Do(wait, func(ctx context.Context) { a.serveStream(ctx, s) }) {
		s.Reset()
	}
}

// serveStream answers challenges until Bye, the bound, or an error.
func (a *Auditor) serveStream(ctx context.Context, s network.Stream) {
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	c := proto.NewCodec(s)
	for range maxPerStream {
		_ = s.SetReadDeadline(time.Now().Add(serveIdle))
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			return
		}
		var reply proto.Msg
		switch m := msg.(type) {
		case *proto.Bye:
			s.Close()
			return
		case *proto.AuditRequest:
			reply = a.answer(ctx, m)
		default:
			_ = p2pstream.Send(c, p2pstream.ErrorReply(0, proto.CodeBadRequest, "unexpected "+msg.Type().String()))
			s.Reset()
			return
		}
		_ = s.SetWriteDeadline(time.Now().Add(serveIdle))
		if err := p2pstream.Send(c, reply); err != nil {
			s.Reset()
			return
		}
	}
	s.Close()
}

// answer answers one challenge. A chunk not held, or not of the named
// content, is answered missing; a chunk held that fails the verifying read
// (gone or corrupt: the store drops it from its index) is answered missing
// too, and the rest of the content is swept, so that the repair round
// fetches every lost chunk back.
func (a *Auditor) answer(ctx context.Context, m *proto.AuditRequest) proto.Msg {
	a.count(func(s *Stats) { s.Served++ })
	missing := &proto.AuditResponse{ID: m.ID, State: proto.AuditMissing}
	man, err := a.store.Manifest(ctx, m.Root)
	if errors.Is(err, chunk.ErrNotFound) {
		return missing
	}
	if err != nil {
		return p2pstream.ErrorReply(m.ID, proto.CodeInternal, err.Error())
	}
	if !hasChunk(man, m.Chunk) {
		return missing
	}
	held, err := a.store.HasChunk(m.Chunk)
	if err != nil {
		return p2pstream.ErrorReply(m.ID, proto.CodeInternal, err.Error())
	}
	if !held {
		return missing
	}
	data, err := a.store.GetChunk(ctx, m.Chunk)
	switch {
	case errors.Is(err, chunk.ErrCorrupt) || errors.Is(err, chunk.ErrNotFound):
		a.count(func(s *Stats) { s.LostHere++ })
		a.log.Warn("audit found a chunk of this member lost or corrupt; the content will be fetched again", "cid", m.Root, "chunk", m.Chunk)
		a.repl.Recheck(m.Root)
		a.sweep(m.Root, man)
		return missing
	case err != nil:
		return p2pstream.ErrorReply(m.ID, proto.CodeInternal, err.Error())
	}
	return &proto.AuditResponse{ID: m.ID, State: proto.AuditHeld, Proof: proto.AuditProof(m.Nonce, data)}
}

// hasChunk reports whether id is a chunk of m.
func hasChunk(m *chunk.Manifest, id cid.Cid) bool {
	for _, c := range m.Chunks {
		if c.CID.Equals(id) {
			return true
		}
	}
	return false
}

// sweep reads every chunk of root through the verifying read, in the
// background, so that the store drops every lost or corrupt one (not only
// the one challenged) and the repair round's resume fetches them all. One
// sweep of a root runs at a time.
func (a *Auditor) sweep(root cid.Cid, m *chunk.Manifest) {
	k := root.KeyString()
	a.mu.Lock()
	if a.sweeping[k] {
		a.mu.Unlock()
		return
	}
	a.sweeping[k] = true
	a.mu.Unlock()
	done := func() {
		a.mu.Lock()
		delete(a.sweeping, k)
		a.mu.Unlock()
	}
	wait, cancel := context.WithTimeout(context.Background(), serveWait)
	defer cancel()
	if !a.tasks.Go(wait, func(ctx context.Context) {
		defer done()
		lost := 0
		for _, c := range m.Chunks {
			held, err := a.store.HasChunk(c.CID)
			if err != nil || !held {
				continue
			}
			if _, err := a.store.GetChunk(ctx, c.CID); errors.Is(err, chunk.ErrCorrupt) || errors.Is(err, chunk.ErrNotFound) {
				lost++
			} else if ctx.Err() != nil {
				return
			}
		}
		a.log.Warn("swept a damaged content", "cid", root, "chunks", len(m.Chunks), "lost", lost+1)
		a.repl.Recheck(root) // the chunks the sweep dropped too
	}) {
		done()
	}
}
