package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Pulling a list of shards from one source (docs/ERASURE.md "Put", "Get"):
// BlockRequests by shard CID pipelined on one exchange stream, answered in
// order, each answer verified against its CID before it is handed on.

// shardWindow is how many shard requests are in flight on one stream.
const shardWindow = 8

// ErrLiar wraps the error of a source that sent bytes not matching the
// shard CID asked for: it is not asked again in this fetch.
var ErrLiar = errors.New("swarm: source sent a shard that does not match its CID")

// FetchShards fetches the shards ids from p on one stream, verifying each
// against its CID, and calls fn(j, data) for ids[j] in order; data is only
// valid during the call. A source that sends wrong bytes gives an error
// wrapping ErrLiar and chunk.ErrCorrupt; one that does not hold a shard, an
// error wrapping ErrNoHolder.
func (x *Exchange) FetchShards(ctx context.Context, p peer.ID, ids []cid.Cid, fn func(j int, data []byte) error) error {
	pid := x.Protocol()
	if pid == "" {
		return fmt.Errorf("fetching shards from %s: %w", p, ErrNoSwarm)
	}
	return x.pullShards(ctx, pid, p, ids, fn)
}

// pullShards is FetchShards on the protocol pid.
func (x *Exchange) pullShards(ctx context.Context, pid protocol.ID, p peer.ID, ids []cid.Cid, fn func(j int, data []byte) error) error {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, release, err := p2pstream.Open(ctx, x.host, p, pid, x.fetchOpts.DialTimeout)
	if err != nil {
		return fmt.Errorf("fetching shards from %s: %w", p, err)
	}
	defer release()
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	c := proto.NewCodec(s)
	window := make(chan struct{}, shardWindow)
	sent := make(chan error, 1)
	go func() {
		for j, id := range ids {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				sent <- ctx.Err()
				return
			}
			_ = s.SetWriteDeadline(time.Now().Add(x.fetchOpts.ReplyTimeout))
			if err := c.Send(&proto.BlockRequest{ID: uint64(j + 1), CID: id}); err != nil {
				sent <- err
				return
			}
			if len(window) == cap(window) || j == len(ids)-1 {
				if err := c.Flush(); err != nil {
					sent <- err
					return
				}
			}
		}
		sent <- nil
	}()
	for j, id := range ids {
		_ = s.SetReadDeadline(time.Now().Add(x.fetchOpts.ReplyTimeout))
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			return fmt.Errorf("fetching shards from %s: %w", p, err)
		}
		switch m := msg.(type) {
		case *proto.BlockResponse:
			if m.ID != uint64(j+1) || !m.CID.Equals(id) {
				s.Reset()
				return fmt.Errorf("fetching shards from %s: answer %d to request %d: %w", p, m.ID, j+1, proto.ErrInvalid)
			}
			x.received.Add(int64(len(m.Data)))
			if err := chunk.VerifyChunk(id, m.Data); err != nil {
				s.Reset()
				if rerr := x.reportCorrupt(ctx, pid, p, id); rerr != nil {
					x.log.Debug("reporting a corrupt shard failed", "err", rerr)
				}
				return fmt.Errorf("fetching shard %s from %s: %w: %w", id, p, ErrLiar, err)
			}
			if err := wait(ctx, x.bw.down, len(m.Data)); err != nil {
				s.Reset()
				return err
			}
			if err := fn(j, m.Data); err != nil {
				s.Reset()
				return err
			}
		case *proto.ErrorResponse:
			s.Reset()
			return fmt.Errorf("fetching shard %s from %s: %w: %w", id, p, ErrNoHolder, m)
		default:
			s.Reset()
			return fmt.Errorf("fetching shards from %s: unexpected %s: %w", p, msg.Type(), proto.ErrInvalid)
		}
		<-window
	}
	if err := <-sent; err != nil {
		s.Reset()
		return fmt.Errorf("fetching shards from %s: %w", p, err)
	}
	_ = p2pstream.Send(c, &proto.Bye{})
	_ = s.CloseWrite()
	s.Close()
	return nil
}

// askShards asks p which shard sets of root it holds (a HaveRequest), and
// whether it holds every chunk (complete).
func (x *Exchange) askShards(ctx context.Context, pid protocol.ID, p peer.ID, root cid.Cid) (mask uint32, complete bool, err error) {
	s, release, err := p2pstream.Open(ctx, x.host, p, pid, x.fetchOpts.DialTimeout)
	if err != nil {
		return 0, false, err
	}
	defer release()
	_ = s.SetDeadline(time.Now().Add(x.fetchOpts.DialTimeout))
	c := proto.NewCodec(s)
	if err := p2pstream.Send(c, &proto.HaveRequest{ID: 1, Root: root}); err != nil {
		s.Reset()
		return 0, false, err
	}
	msg, err := c.Recv()
	if err != nil {
		s.Reset()
		return 0, false, fmt.Errorf("asking %s for shards: %w", p, err)
	}
	_ = p2pstream.Send(c, &proto.Bye{})
	s.Close()
	switch m := msg.(type) {
	case *proto.HaveResponse:
		if m.ID != 1 || !m.Root.Equals(root) {
			return 0, false, fmt.Errorf("asking %s for shards: %w", p, proto.ErrInvalid)
		}
		return m.Shards, m.Complete, nil
	case *proto.ErrorResponse:
		return 0, false, fmt.Errorf("asking %s for shards: %w", p, m)
	}
	return 0, false, fmt.Errorf("asking %s for shards: unexpected %s: %w", p, msg.Type(), proto.ErrInvalid)
}
