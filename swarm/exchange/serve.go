package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// This file implements the serving side of the chunk exchange
// (docs/PROTOCOL.md "Chunk exchange", docs/EXCHANGE.md "Serving").

// handle serves one exchange stream: it reads requests one after another
// and answers each in order, until the peer closes its side or sends Bye
// (the stream is closed) or breaks the protocol (the stream is reset).
//
// The stream is served as work of Run, under its context: stopping resets
// it and waits for it. Outside Run the stream is reset.
func (x *Exchange) handle(s network.Stream) {
	wait, cancel := context.WithTimeout(context.Background(), handleWait)
	defer cancel()
	if !x.tasks.Do(wait, func(ctx context.Context) { x.serveStream(ctx, s) }) {
		s.Reset()
	}
}

// HandleStream serves s as the stream handler registered by SetSwarm does.
// Tests of other packages use it to wrap the serving side (an injected
// delay: swarm/replicate's repair tests).
func (x *Exchange) HandleStream(s network.Stream) { x.handle(s) }

// handleWait bounds how long a new stream waits for Run to take it.
const handleWait = 5 * time.Second

// serveStream serves s until it ends or ctx ends (s is then reset).
func (x *Exchange) serveStream(ctx context.Context, s network.Stream) {
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	p := s.Conn().RemotePeer()
	sv := &server{x: x, s: s, c: proto.NewCodec(s)}
	err := sv.serve(ctx)
	if err != nil {
		x.log.Debug("exchange stream reset", "peer", p, "err", err)
		s.Reset()
		return
	}
	s.Close()
}

// server is the state of one served stream.
type server struct {
	x *Exchange
	s network.Stream
	c *proto.Codec
	// bufs are the chunk buffers of this stream: one is taken for each
	// chunk read and given back once the chunk is sent.
	bufs chan []byte
}

// serve answers the requests of one stream in order. One goroutine reads
// requests and prepares the answers (a chunk is read from disk and verified
// while the one before it is still being sent); this one sends them,
// flushing whenever no further answer is ready.
func (sv *server) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// A chunk buffer is in each queued answer, in the one being sent and
	// in the one being read.
	sv.bufs = make(chan []byte, serveAhead+2)
	for range serveAhead + 2 {
		sv.bufs <- nil // allocated on first use
	}
	answers := make(chan proto.Msg, serveAhead)
	produced := make(chan error, 1)
	go func() {
		produced <- sv.produce(ctx, answers)
		close(answers)
	}()
	for resp := range answers {
		_ = sv.s.SetWriteDeadline(time.Now().Add(sv.x.idle))
		if err := sv.c.Send(resp); err != nil {
			return fmt.Errorf("sending %s: %w", resp.Type(), err)
		}
		if len(answers) == 0 {
			if err := sv.c.Flush(); err != nil {
				return fmt.Errorf("sending %s: %w", resp.Type(), err)
			}
		}
		if b, ok := resp.(*proto.BlockResponse); ok {
			sv.x.sent.Add(int64(len(b.Data)))
			sv.bufs <- b.Data // Send copied it
		}
	}
	return <-produced
}

// serveAhead is how many answers a stream prepares before they are sent.
const serveAhead = 2

// produce reads requests until the peer closes its side or sends Bye (nil)
// or breaks the protocol (an error), and queues an answer for each.
func (sv *server) produce(ctx context.Context, answers chan<- proto.Msg) error {
	for {
		_ = sv.s.SetReadDeadline(time.Now().Add(sv.x.idle))
		m, err := sv.c.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading request: %w", err)
		}
		var resp proto.Msg
		switch m := m.(type) {
		case *proto.HaveRequest:
			resp = sv.have(ctx, m)
		case *proto.ManifestRequest:
			resp = sv.manifest(ctx, m)
		case *proto.BlockRequest:
			resp, err = sv.block(ctx, m)
		case *proto.Bye:
			return nil
		default:
			return fmt.Errorf("%s is not a request of the exchange protocol", m.Type())
		}
		if err != nil {
			return err
		}
		select {
		case answers <- resp:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// errResp builds an ErrorResponse, logging internal failures.
func (sv *server) errResp(id uint64, err error) *proto.ErrorResponse {
	code := proto.CodeInternal
	switch {
	case errors.Is(err, chunk.ErrNotFound), errors.Is(err, chunk.ErrCorrupt):
		code = proto.CodeNotFound
	case errors.Is(err, chunk.ErrBadCID):
		code = proto.CodeBadRequest
	case errors.Is(err, chunk.ErrNoSpace):
		code = proto.CodeNoSpace
	default:
		sv.x.log.Warn("serving a request failed", "peer", sv.s.Conn().RemotePeer(), "err", err)
	}
	return p2pstream.ErrorReply(id, code, err.Error())
}

// have answers with the bitfield of the chunks of m.Root held here.
func (sv *server) have(ctx context.Context, m *proto.HaveRequest) proto.Msg {
	man, err := sv.x.store.Manifest(ctx, m.Root)
	if err != nil {
		return sv.errResp(m.ID, err)
	}
	if len(man.Chunks) > proto.MaxNumChunks {
		return sv.errResp(m.ID, fmt.Errorf("manifest %s lists %d chunks, over the protocol's %d", m.Root, len(man.Chunks), proto.MaxNumChunks))
	}
	missing, err := sv.x.missing(ctx, m.Root)
	if err != nil {
		return sv.errResp(m.ID, err)
	}
	absent := make(map[string]struct{}, len(missing))
	for _, r := range missing {
		absent[r.CID.KeyString()] = struct{}{}
	}
	bf := proto.NewBitfield(len(man.Chunks))
	for i, r := range man.Chunks {
		if _, ok := absent[r.CID.KeyString()]; !ok {
			bf.Set(i)
		}
	}
	resp := &proto.HaveResponse{ID: m.ID, Root: m.Root, Complete: len(missing) == 0, NumChunks: uint32(len(man.Chunks)), Have: bf}
	if f := sv.x.overHint.Load(); f != nil && m.Over && resp.Complete {
		(*f)(m.Root)
	}
	if man.Coded() {
		resp.Shards = sv.x.heldShardMask(ctx, m.Root)
	}
	return resp
}

func (sv *server) manifest(ctx context.Context, m *proto.ManifestRequest) proto.Msg {
	man, err := sv.x.store.Manifest(ctx, m.Root)
	if err != nil {
		return sv.errResp(m.ID, err)
	}
	enc, err := man.Encode()
	if err != nil {
		return sv.errResp(m.ID, err)
	}
	if len(enc) > proto.MaxManifestSize {
		return sv.errResp(m.ID, fmt.Errorf("manifest %s is %d bytes, over the protocol's %d", m.Root, len(enc), proto.MaxManifestSize))
	}
	return &proto.ManifestResponse{ID: m.ID, Root: m.Root, Data: enc}
}

// block reads a chunk and waits for upload bandwidth. Only a failed wait
// (the stream's end) is returned as an error.
//
// The chunk is not hashed here: the requester verifies every chunk it
// receives, and one that does not match comes back as a BlockRequest with
// Verify set, which is answered after GetChunk verified the copy (a corrupt
// one is quarantined and answered NotFound). docs/STORE.md "Who verifies
// what".
func (sv *server) block(ctx context.Context, m *proto.BlockRequest) (proto.Msg, error) {
	if busy := sv.x.gated(sv.s.Conn().RemotePeer(), m); busy != nil {
		return busy, nil
	}
	var buf []byte
	select {
	case buf = <-sv.bufs:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var data []byte
	var err error
	if m.Verify {
		data, err = sv.x.store.GetChunkInto(ctx, m.CID, buf)
		if errors.Is(err, chunk.ErrCorrupt) {
			sv.x.log.Warn("a peer reported a corrupt chunk, quarantined", "peer", sv.s.Conn().RemotePeer(), "cid", m.CID)
		}
	} else {
		data, err = sv.x.store.ReadChunkInto(ctx, m.CID, buf)
	}
	if errors.Is(err, chunk.ErrNotFound) {
		if fdata, ok, ferr := sv.x.fileChunk(m.CID, buf); ok {
			data, err = fdata, ferr
		} else if coded, ok := sv.x.codedShard(ctx, m.CID); ok {
			data, err = coded, nil
		}
	}
	if err != nil {
		sv.bufs <- buf
		return sv.errResp(m.ID, err), nil
	}
	if sv.x.corrupt.Load() && len(data) > 0 {
		data[len(data)/2] ^= 0xff
	}
	if err := wait(ctx, sv.x.bw.up, len(data)); err != nil {
		return nil, err
	}
	return &proto.BlockResponse{ID: m.ID, CID: m.CID, Data: data}, nil
}
