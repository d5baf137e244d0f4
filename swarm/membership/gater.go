package membership

import (
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// Gater is the connection gater of a closed swarm: it admits only the peer IDs
// of the adopted swarm definition, in both directions. With no definition
// adopted it admits no one, so a daemon that has joined no swarm talks to no
// one. A refused peer's connection is closed right after the security
// handshake, before any protocol runs.
type Gater struct {
	mu      sync.RWMutex
	allowed map[peer.ID]struct{}
	refused atomic.Int64
}

// NewGater returns a gater that admits no one until SetMembers is called.
func NewGater() *Gater { return &Gater{allowed: map[peer.ID]struct{}{}} }

// SetMembers replaces the set of admitted peers and returns the peers that
// were admitted before and are not any more (their connections should be
// closed by the caller).
func (g *Gater) SetMembers(ids []peer.ID) (removed []peer.ID) {
	next := make(map[peer.ID]struct{}, len(ids))
	for _, id := range ids {
		next[id] = struct{}{}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for id := range g.allowed {
		if _, ok := next[id]; !ok {
			removed = append(removed, id)
		}
	}
	g.allowed = next
	return removed
}

// Allowed reports whether p is a member.
func (g *Gater) Allowed(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, ok := g.allowed[p]
	return ok
}

// InterceptPeerDial refuses to dial non-members.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.Allowed(p) }

// InterceptAddrDial refuses to dial non-members.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.Allowed(p) }

// InterceptAccept lets the handshake run; the peer is not known yet.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured refuses an authenticated connection from a non-member.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if !g.Allowed(p) {
		g.refused.Add(1)
		return false
	}
	return true
}

// Refused counts the authenticated connections refused since start.
func (g *Gater) Refused() int64 { return g.refused.Load() }

// InterceptUpgraded admits what InterceptSecured admitted.
func (g *Gater) InterceptUpgraded(c network.Conn) (bool, control.DisconnectReason) {
	return g.Allowed(c.RemotePeer()), 0
}
