package membership

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
)

// A DHT started at adoption has an empty routing table for its first
// moments: the members' connections are added once identify confirms
// they speak the swarm's DHT protocol. A lookup or an announcement in
// those moments fails at once ("no peers in table"), so a `get` right
// after `join` said "no holder" although the holders were connected to
// the swarm. The content routing the exchange uses waits for the table,
// bounded by readyWait and by the caller's context.

// readyWait bounds how long a lookup or an announcement waits for the
// swarm DHT's routing table to hold a peer.
const readyWait = 5 * time.Second

// readyPoll is how often the routing table is looked at while waiting.
const readyPoll = 20 * time.Millisecond

// Routing returns the content routing of the swarm's DHT, or nil when no
// swarm is joined. Its lookups and announcements first wait (at most
// readyWait) for the routing table to hold a peer.
func (m *Membership) Routing() routing.ContentRouting {
	kd := m.DHT()
	if kd == nil {
		return nil
	}
	return readyRouting{kd}
}

// readyRouting is a DHT whose content routing waits for its routing table.
type readyRouting struct{ kd *dht.IpfsDHT }

// waitReady returns once the routing table holds a peer, readyWait has
// passed or ctx ended; the call that follows reports what it finds.
func (r readyRouting) waitReady(ctx context.Context) {
	if r.kd.RoutingTable().Size() > 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	t := time.NewTicker(readyPoll)
	defer t.Stop()
	for r.kd.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Provide announces c once the routing table holds a peer.
func (r readyRouting) Provide(ctx context.Context, c cid.Cid, announce bool) error {
	r.waitReady(ctx)
	return r.kd.Provide(ctx, c, announce)
}

// FindProvidersAsync looks c up once the routing table holds a peer.
func (r readyRouting) FindProvidersAsync(ctx context.Context, c cid.Cid, count int) <-chan peer.AddrInfo {
	r.waitReady(ctx)
	return r.kd.FindProvidersAsync(ctx, c, count)
}
