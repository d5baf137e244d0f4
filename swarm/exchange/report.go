package exchange

import (
	"context"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// reportCorrupt tells p, on a stream of its own, that the bytes it sent for
// id did not match: a BlockRequest with Verify set, which makes p verify its
// copy and quarantine it when corrupt (docs/STORE.md "Who verifies what").
// The answer is read and dropped. The multi-source fetcher reports on the
// source's own stream instead (pickSuspect); this is for the pullers that
// reset the stream on a bad chunk. It waits at most DialTimeout plus
// ReplyTimeout.
func (x *Exchange) reportCorrupt(ctx context.Context, pid protocol.ID, p peer.ID, id cid.Cid) error {
	s, release, err := p2pstream.Open(ctx, x.host, p, pid, x.fetchOpts.DialTimeout)
	if err != nil {
		return fmt.Errorf("reporting corrupt chunk %s to %s: %w", id, p, err)
	}
	defer release()
	_ = s.SetDeadline(time.Now().Add(x.fetchOpts.ReplyTimeout))
	c := proto.NewCodec(s)
	if err := p2pstream.Send(c, &proto.BlockRequest{ID: 1, CID: id, Verify: true}); err != nil {
		s.Reset()
		return fmt.Errorf("reporting corrupt chunk %s to %s: %w", id, p, err)
	}
	if _, err := c.Recv(); err != nil {
		s.Reset()
		return fmt.Errorf("reporting corrupt chunk %s to %s: %w", id, p, err)
	}
	_ = p2pstream.Send(c, &proto.Bye{})
	s.Close()
	return nil
}
