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

// This file fetches a manifest from its holders (docs/EXCHANGE.md
// "Fetching"): one stream per candidate, the bytes checked against the root.

// fetchManifest asks the candidates one after another for the manifest and
// returns the first one that hashes to root, with the peer that sent it,
// recorded in the store when record is set.
func (x *Exchange) fetchManifest(ctx context.Context, pid protocol.ID, root cid.Cid, cands <-chan peer.ID, record bool) (*chunk.Manifest, peer.ID, error) {
	asked, lied := 0, 0
	for p := range cands {
		asked++
		m, err := x.askManifest(ctx, pid, p, root)
		if err == nil {
			if !record {
				return m, p, nil
			}
			if _, err = x.store.PutManifest(ctx, m); err != nil {
				return nil, "", fmt.Errorf("fetching %s: %w", root, err)
			}
			return m, p, nil
		}
		if errors.Is(err, chunk.ErrBadManifest) {
			lied++
			x.log.Warn("peer sent a manifest that does not match its CID", "peer", p, "root", root, "err", err)
		} else {
			x.log.Debug("manifest not fetched", "peer", p, "root", root, "err", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("fetching %s: %w", root, err)
	}
	return nil, "", fmt.Errorf("fetching %s: manifest: none of %d candidates served it (%d lied): %w", root, asked, lied, ErrNoHolder)
}

// FetchManifest fetches the manifest root from p on a stream of its own
// and checks it; it does not store it. A manifest whose bytes do not hash
// to root wraps chunk.ErrBadManifest; without a swarm it is ErrNoSwarm.
func (x *Exchange) FetchManifest(ctx context.Context, p peer.ID, root cid.Cid) (*chunk.Manifest, error) {
	return x.askManifest(ctx, x.Protocol(), p, root)
}

// askManifest fetches and checks the manifest root from p on a stream of
// its own. A manifest whose bytes do not hash to root wraps
// chunk.ErrBadManifest.
func (x *Exchange) askManifest(ctx context.Context, pid protocol.ID, p peer.ID, root cid.Cid) (*chunk.Manifest, error) {
	s, release, err := p2pstream.Open(ctx, x.host, p, pid, x.fetchOpts.DialTimeout)
	if err != nil {
		return nil, err
	}
	defer release()
	_ = s.SetDeadline(time.Now().Add(x.fetchOpts.ReplyTimeout))
	c := proto.NewCodec(s)
	if err := p2pstream.Send(c, &proto.ManifestRequest{ID: 1, Root: root}); err != nil {
		s.Reset()
		return nil, err
	}
	msg, err := c.Recv()
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("receiving manifest from %s: %w", p, err)
	}
	switch msg := msg.(type) {
	case *proto.ManifestResponse:
		_ = p2pstream.Send(c, &proto.Bye{})
		s.Close()
		if msg.ID != 1 || !msg.Root.Equals(root) {
			return nil, fmt.Errorf("manifest from %s answers another request: %w", p, chunk.ErrBadManifest)
		}
		if got := chunk.ManifestCID(msg.Data); !got.Equals(root) {
			return nil, fmt.Errorf("manifest from %s hashes to %s: %w", p, got, chunk.ErrBadManifest)
		}
		m, err := chunk.DecodeManifest(msg.Data)
		if err != nil {
			return nil, fmt.Errorf("manifest from %s: %w", p, err)
		}
		return m, nil
	case *proto.ErrorResponse:
		s.Close()
		return nil, fmt.Errorf("asking %s for manifest: %w", p, msg)
	default:
		s.Reset()
		return nil, fmt.Errorf("asking %s for manifest: unexpected %s", p, msg.Type())
	}
}
