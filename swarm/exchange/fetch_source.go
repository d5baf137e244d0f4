package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// This file is the fetcher's per-source stream I/O (docs/EXCHANGE.md
// "Fetching"): one session, one stream, a writer of requests and a reader
// of responses.

// session fetches from one source over one stream until the fetch ends or
// the stream fails; a failure gives the source's pending chunks back.
func (f *fetch) session(ctx context.Context, s *source) {
	err := f.runSession(ctx, s)
	f.mu.Lock()
	if err != nil && !f.finished {
		f.x.log.Debug("source lost", "peer", s.id, "root", f.root, "err", err)
	}
	f.kill(s)
	s.ended = time.Now()
	f.wakeAll()
	f.mu.Unlock()
}

func (f *fetch) runSession(ctx context.Context, s *source) error {
	st, stop, err := p2pstream.Open(ctx, f.x.host, s.id, f.pid, f.opts.DialTimeout)
	if err != nil {
		return err
	}
	c := proto.NewCodec(st)
	rerr := make(chan error, 1)
	go func() { rerr <- f.readLoop(ctx, s, st, c) }()
	err = f.writeLoop(ctx, s, st, c, rerr)
	readDone := false // the reader's result has been taken from rerr
	if err == nil && stop() {
		// Finished owing nothing: Bye, then wait for the server's close.
		if err = p2pstream.Send(c, &proto.Bye{}); err == nil {
			err = st.CloseWrite()
		}
		if err == nil {
			err, readDone = <-rerr, true
		}
		if err == nil {
			return st.Close()
		}
	}
	stop()
	st.Reset()
	if !readDone {
		if rerr := <-rerr; err == nil {
			err = rerr
		}
	}
	return err
}

// writeLoop sends requests to s as its window frees up, and a HaveRequest
// at the start and whenever a partial source has nothing left to offer.
// It returns nil when the fetch is finished.
func (f *fetch) writeLoop(ctx context.Context, s *source, st network.Stream, c *proto.Codec, rerr chan error) error {
	f.mu.Lock()
	s.haveID = 1 << 63
	f.mu.Unlock()
	if err := p2pstream.Send(c, &proto.HaveRequest{ID: 1 << 63, Root: f.root}); err != nil {
		return err
	}
	refresh := time.NewTimer(f.opts.HaveRefresh)
	defer refresh.Stop()
	for {
		var reqs []proto.Msg
		f.mu.Lock()
		if f.finished {
			f.mu.Unlock()
			return nil
		}
		if s.known() && !s.dead {
			reqs = f.assign(s)
			if len(reqs) == 0 && s.busy == 0 && !s.complete && s.haveID == 0 &&
				time.Since(s.lastHave) >= f.opts.HaveRefresh {
				s.nextID++
				s.haveID = s.nextID
				reqs = append(reqs, &proto.HaveRequest{ID: s.nextID, Root: f.root})
			}
		}
		f.mu.Unlock()
		if len(reqs) > 0 {
			_ = st.SetWriteDeadline(time.Now().Add(f.opts.ReplyTimeout))
			for _, r := range reqs {
				if err := c.Send(r); err != nil {
					return fmt.Errorf("sending %s to %s: %w", r.Type(), s.id, err)
				}
			}
			if err := c.Flush(); err != nil {
				return fmt.Errorf("sending requests to %s: %w", s.id, err)
			}
		}
		refresh.Reset(f.opts.HaveRefresh)
		select {
		case <-s.wake:
		case <-refresh.C:
		case err := <-rerr:
			rerr <- err // runSession waits for it too
			if err == nil {
				err = fmt.Errorf("%s closed the stream", s.id)
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readLoop receives the responses of s: have-sets, chunks (handed to the
// store workers after the download limiter) and errors. It returns nil at
// a clean end of stream after the fetch finished.
func (f *fetch) readLoop(ctx context.Context, s *source, st network.Stream, c *proto.Codec) error {
	for {
		_ = st.SetReadDeadline(time.Now().Add(f.opts.ReplyTimeout))
		msg, err := c.Recv()
		if errors.Is(err, io.EOF) {
			f.mu.Lock()
			done := f.finished
			f.mu.Unlock()
			if done {
				return nil
			}
			return fmt.Errorf("%s closed the stream", s.id)
		}
		if err != nil {
			return fmt.Errorf("receiving from %s: %w", s.id, err)
		}
		switch m := msg.(type) {
		case *proto.HaveResponse:
			if err := f.onHave(s, m); err != nil {
				return err
			}
		case *proto.BlockResponse:
			f.mu.Lock()
			w := f.take(s, m.ID)
			poke(s.wake) // its window slot is free
			f.mu.Unlock()
			if w == nil || !w.id.Equals(m.CID) {
				return fmt.Errorf("%s answered request %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
			}
			f.x.received.Add(int64(len(m.Data)))
			d := delivery{s: s, w: w, data: m.Data}
			if err := wait(ctx, f.x.bw.down, len(m.Data)); err != nil {
				f.giveBack(d)
				return err
			}
			select {
			case f.work <- d:
			case <-ctx.Done():
				f.giveBack(d)
				return ctx.Err()
			}
		case *proto.ErrorResponse:
			if err := f.onError(s, m); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s sent %s, not a response: %w", s.id, msg.Type(), proto.ErrInvalid)
		}
	}
}

// giveBack releases a received chunk that will not be stored.
func (f *fetch) giveBack(d delivery) {
	f.mu.Lock()
	f.release(d.s, d.w, true)
	f.mu.Unlock()
}

// onHave records a source's have-set.
func (f *fetch) onHave(s *source, m *proto.HaveResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ID != s.haveID || !m.Root.Equals(f.root) {
		return fmt.Errorf("%s answered HaveRequest %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
	}
	if n := f.nchunks; int(m.NumChunks) != n {
		return fmt.Errorf("%s says %s has %d chunks, the manifest lists %d: %w", s.id, f.root, m.NumChunks, n, proto.ErrInvalid)
	}
	s.have, s.complete, s.haveID, s.lastHave = m.Have, m.Complete, 0, time.Now()
	f.resort = true
	f.wakeAll()
	return nil
}

// onError handles an ErrorResponse: to the HaveRequest it means the source
// does not hold the manifest (the session ends); to a BlockRequest, that
// it lost the chunk (requeued elsewhere).
func (f *fetch) onError(s *source, m *proto.ErrorResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ID == s.haveID && m.ID != 0 {
		s.absent = m.Code == proto.CodeNotFound
		return fmt.Errorf("%s does not serve %s: %w", s.id, f.root, m)
	}
	w := f.take(s, m.ID)
	if w == nil {
		return fmt.Errorf("%s answered request %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
	}
	f.release(s, w, true)
	f.notHeld(s, w)
	f.wakeAll()
	return nil
}
