package membership

import (
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/p2p/host/autorelay"
	lpswarm "github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// quicDelay is how long a dial waits on a member's TCP addresses before it
// tries its QUIC ones too.
const quicDelay = 250 * time.Millisecond

// NewHost starts a libp2p host with the given identity on TCP and QUIC, gated
// by g. No relay, no hole punching: members reach each other at the
// addresses the swarm definition lists.
func NewHost(key crypto.PrivKey, listen []string, g *Gater) (host.Host, error) {
	return NewHostNAT(key, listen, g, nil)
}

// NewHostNAT is NewHost with NAT traversal: with nat (nil: none) a member behind NAT also holds
// relay reservations on the public members, is dialed through them, and
// upgrades to a direct connection by hole punching (docs/NAT.md). The
// gater applies to relayed and hole-punched connections as to any other.
func NewHostNAT(key crypto.PrivKey, listen []string, g *Gater, nat *NAT) (host.Host, error) {
	opts := []libp2p.Option{
		libp2p.Identity(key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionGater(g),
		libp2p.SwarmOpts(lpswarm.WithDialRanker(tcpFirst)),
	}
	if nat == nil {
		opts = append(opts, libp2p.DisableRelay())
	} else {
		opts = append(opts,
			libp2p.EnableRelay(),
			libp2p.EnableHolePunching(holepunch.WithTracer(nat)),
			libp2p.EnableAutoRelayWithPeerSource(nat.staticRelays,
				autorelay.WithMinCandidates(1),
				autorelay.WithNumRelays(2),
				autorelay.WithBootDelay(0),
				autorelay.WithMinInterval(5*time.Second),
				autorelay.WithBackoff(15*time.Second),
			),
		)
	}
	h, err := libp2p.New(opts...)
	if err != nil {
		return nil, fmt.Errorf("starting libp2p host on %v: %w", listen, err)
	}
	if nat != nil {
		if err := nat.attach(h); err != nil {
			h.Close()
			return nil, err
		}
	}
	return h, nil
}

// tcpFirst is the dial ranker: a member's TCP addresses at once, its other
// addresses (QUIC) quicDelay later, so that bulk chunk transfers run over
// TCP where it works — measured 38 % faster than QUIC for a 1 GiB get
// between two daemons here (docs/PERFORMANCE.md) — and QUIC is the way in
// where TCP is blocked.
func tcpFirst(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, 0, len(addrs))
	for _, a := range addrs {
		d := quicDelay
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			d = 0
		}
		out = append(out, network.AddrDelay{Addr: a, Delay: d})
	}
	return out
}
