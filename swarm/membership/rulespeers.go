package membership

import (
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/rules"
)

// The rules package keeps peer IDs in its own type (so that the CLI links no
// libp2p); these convert a definition's members to libp2p's types.

// peersOf returns the peer IDs of all members of d, in document order.
func peersOf(d *rules.Definition) []peer.ID {
	ps := make([]peer.ID, len(d.Members))
	for i, m := range d.Members {
		ps[i] = peer.ID(m.Peer)
	}
	return ps
}

// addrInfos returns each member's peer ID and addresses, for dialing.
func addrInfos(d *rules.Definition) []peer.AddrInfo {
	out := make([]peer.AddrInfo, len(d.Members))
	for i, m := range d.Members {
		out[i] = peer.AddrInfo{ID: peer.ID(m.Peer), Addrs: slices.Clone(m.Addrs)}
	}
	return out
}
