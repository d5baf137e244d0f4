package membership

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/eventbus"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	"github.com/libp2p/go-libp2p/p2p/protocol/holepunch"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/annex-swarm/annex-swarm/rules"
)

// Connection kinds, as status reports them (docs/NAT.md).
const (
	ConnDirect      = "direct"       // a direct connection, dialed at a listed or learned address
	ConnHolePunched = "hole-punched" // a direct connection made by hole punching (DCUtR)
	ConnRelayed     = "relayed"      // only a limited connection through a member's relay
)

// RelayLimit bounds one relayed connection: enough for identify, the
// rules exchange and the hole punch (signalling), not for chunks.
var RelayLimit = relayv2.RelayLimit{Duration: 2 * time.Minute, Data: 1 << 20}

// NAT is this host's side of member-only NAT traversal (docs/NAT.md):
// reachability learned from members (reach.go), the circuit relay v2
// service run for members when this member's entry lists addresses, the
// public members as this host's static relays, and the outcome of hole
// punches. Build it with NewNAT, hand it to NewHost, and call Follow on
// each adopted definition and Run once.
type NAT struct {
	gater *Gater
	log   *slog.Logger

	h     host.Host
	reach atomic.Int32 // network.Reachability
	emit  event.Emitter
	sub   event.Subscription // identify completions, for upgradeRelayed

	relays atomic.Pointer[[]peer.AddrInfo] // the public members but this host

	mu      sync.Mutex
	relay   *relayv2.Relay
	punched map[peer.ID]punchResult

	stats RelayStats
}

type punchResult struct {
	ok  bool
	err string
	at  time.Time
}

// RelayStats are the relay service's counters since start.
type RelayStats struct {
	Reservations        atomic.Int64 // reservations granted (and renewed)
	ReservationsRefused atomic.Int64 // reservations refused (not a member, limits)
	Circuits            atomic.Int64 // relayed connections opened
	CircuitsRefused     atomic.Int64 // relayed connections refused
	BytesRelayed        atomic.Int64 // bytes copied between the two ends, both ways
}

// NewNAT returns the NAT traversal state of a host gated by g.
func NewNAT(g *Gater, log *slog.Logger) *NAT {
	if log == nil {
		log = slog.Default()
	}
	n := &NAT{gater: g, log: log.With("component", "nat"), punched: map[peer.ID]punchResult{}}
	n.relays.Store(&[]peer.AddrInfo{})
	return n
}

// attach binds n to the host built around it.
func (n *NAT) attach(h host.Host) error {
	em, err := h.EventBus().Emitter(new(event.EvtLocalReachabilityChanged), eventbus.Stateful)
	if err != nil {
		return fmt.Errorf("creating the reachability emitter: %w", err)
	}
	sub, err := h.EventBus().Subscribe(new(event.EvtPeerIdentificationCompleted))
	if err != nil {
		em.Close()
		return fmt.Errorf("subscribing to identify events: %w", err)
	}
	n.h, n.emit, n.sub = h, em, sub
	go n.upgradeRelayed(sub)
	h.SetStreamHandler(ReachProtocol, n.handleReach)
	// Until members say otherwise, hold reservations on the public
	// members (autorelay starts on unknown as on private).
	if err := em.Emit(event.EvtLocalReachabilityChanged{Reachability: network.ReachabilityUnknown}); err != nil {
		return fmt.Errorf("announcing reachability: %w", err)
	}
	return nil
}

// Close stops the relay service and the reachability emitter.
func (n *NAT) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.relay != nil {
		_ = n.relay.Close()
		n.relay = nil
	}
	if n.sub != nil {
		_ = n.sub.Close()
	}
	if n.emit != nil {
		return n.emit.Close()
	}
	return nil
}

// directDialTimeout bounds upgradeRelayed's dial.
const directDialTimeout = 10 * time.Second

// upgradeRelayed dials a direct connection to a member this host reaches
// only through a relay, at the addresses the member announced (identify),
// private ones included: members on one private network reach each other
// without hole punching, which libp2p tries only between public
// addresses. The chunk exchange waits for a direct connection; this gives
// it one where one can be had.
func (n *NAT) upgradeRelayed(sub event.Subscription) {
	for ev := range sub.Out() {
		p := ev.(event.EvtPeerIdentificationCompleted).Peer
		if !n.gater.Allowed(p) || n.hasDirectConn(p) || len(n.h.Network().ConnsToPeer(p)) == 0 {
			continue
		}
		go func() {
			ctx, cancel := context.WithTimeout(network.WithForceDirectDial(context.Background(), "member behind a relay"), directDialTimeout)
			defer cancel()
			if err := n.h.Connect(ctx, peer.AddrInfo{ID: p}); err != nil {
				n.log.Debug("no direct connection to a relayed member; hole punching may make one", "peer", p, "err", err)
			}
		}()
	}
}

// Follow applies an adopted definition (nil: none): the public members
// (entries with addresses) become this host's static relays, members
// without addresses become dialable through each relay, and this host runs
// the relay service when its own entry lists addresses.
func (n *NAT) Follow(d *rules.Definition) {
	if n.h == nil {
		return
	}
	self := n.h.ID()
	var relays []peer.AddrInfo
	selfPublic := false
	if d != nil {
		for _, ai := range addrInfos(d) {
			if len(ai.Addrs) == 0 {
				continue
			}
			if ai.ID == self {
				selfPublic = true
				continue
			}
			relays = append(relays, ai)
		}
		for _, ai := range addrInfos(d) {
			if ai.ID == self || len(ai.Addrs) > 0 {
				continue
			}
			n.h.Peerstore().AddAddrs(ai.ID, CircuitAddrs(relays), time.Hour)
		}
	}
	n.relays.Store(&relays)
	if err := n.setRelayService(selfPublic && d != nil); err != nil {
		n.log.Warn("relay service not started", "err", err)
	}
}

// CircuitAddrs are the addresses of a member reached through relays: one
// /p2p/RELAY/p2p-circuit per relay. The dial succeeds only when the member
// holds a reservation on that relay.
func CircuitAddrs(relays []peer.AddrInfo) []ma.Multiaddr {
	out := make([]ma.Multiaddr, 0, len(relays))
	for _, r := range relays {
		a, err := ma.NewMultiaddr("/p2p/" + r.ID.String() + "/p2p-circuit")
		if err == nil {
			out = append(out, a)
		}
	}
	return out
}

// staticRelays is autorelay's peer source: the public members of the
// adopted definition.
func (n *NAT) staticRelays(ctx context.Context, _ int) <-chan peer.AddrInfo {
	rs := *n.relays.Load()
	ch := make(chan peer.AddrInfo, len(rs))
	for _, r := range rs {
		ch <- r
	}
	close(ch)
	return ch
}

func (n *NAT) setRelayService(on bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on == (n.relay != nil) {
		return nil
	}
	if !on {
		err := n.relay.Close()
		n.relay = nil
		n.log.Info("relay service stopped")
		return err
	}
	res := relayv2.DefaultResources()
	lim := RelayLimit
	res.Limit = &lim
	r, err := relayv2.New(n.h,
		relayv2.WithResources(res),
		relayv2.WithACL(memberACL{n.gater}),
		relayv2.WithMetricsTracer(&relayTracer{s: &n.stats}),
		// A closed swarm may live on private networks: hand out every
		// address but loopback.
		relayv2.WithReservationAddressFilter(func(a ma.Multiaddr) bool { return !manet.IsIPLoopback(a) }),
	)
	if err != nil {
		return fmt.Errorf("starting the relay service: %w", err)
	}
	n.relay = r
	n.log.Info("relay service started for members", "limit_bytes", lim.Data, "limit_duration", lim.Duration)
	return nil
}

// RelayService reports whether this host runs the relay service.
func (n *NAT) RelayService() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.relay != nil
}

// Stats returns the relay service's counters.
func (n *NAT) Stats() *RelayStats { return &n.stats }

// Reachability is this host's reachability as members see it.
func (n *NAT) Reachability() network.Reachability {
	return network.Reachability(n.reach.Load())
}

// ReachabilityString is Reachability as status shows it: "public",
// "private" or "unknown".
func (n *NAT) ReachabilityString() string {
	return strings.ToLower(n.Reachability().String())
}

// setReachability records r and, when it changed, tells the host's
// subsystems: private starts autorelay (reservations on the static relays),
// public stops it.
func (n *NAT) setReachability(r network.Reachability) {
	if network.Reachability(n.reach.Swap(int32(r))) == r {
		return
	}
	n.log.Info("reachability", "is", r.String())
	if n.emit != nil {
		_ = n.emit.Emit(event.EvtLocalReachabilityChanged{Reachability: r})
	}
}

// ConnKind says how this host is connected to p: ConnDirect,
// ConnHolePunched, ConnRelayed, or "" when not connected.
func (n *NAT) ConnKind(p peer.ID) string {
	if n.h == nil {
		return ""
	}
	direct, relayed := false, false
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if isCircuit(c.RemoteMultiaddr()) || c.Stat().Limited {
			relayed = true
		} else {
			direct = true
		}
	}
	switch {
	case direct:
		n.mu.Lock()
		pr := n.punched[p]
		n.mu.Unlock()
		if pr.ok {
			return ConnHolePunched
		}
		return ConnDirect
	case relayed:
		return ConnRelayed
	}
	return ""
}

// HolePunchError is the error of the last hole punch with p when it failed
// and none succeeded since, else "".
func (n *NAT) HolePunchError(p peer.ID) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if pr := n.punched[p]; !pr.ok {
		return pr.err
	}
	return ""
}

// Trace records hole punch outcomes (holepunch.EventTracer).
func (n *NAT) Trace(evt *holepunch.Event) {
	var success bool
	var msg string
	switch e := evt.Evt.(type) {
	case *holepunch.EndHolePunchEvt:
		success, msg = e.Success, e.Error
	case *holepunch.ProtocolErrorEvt:
		msg = "protocol error: " + e.Error
	default:
		return
	}
	n.mu.Lock()
	prev := n.punched[evt.Remote]
	pr := punchResult{ok: success, at: time.Now()}
	if !success {
		pr.err = "hole punch failed"
		if msg != "" {
			pr.err += ": " + strings.Join(strings.Fields(msg), " ")
		}
		// A later failure does not undo a direct connection that exists.
		if prev.ok {
			pr.ok = true
		}
	}
	n.punched[evt.Remote] = pr
	n.mu.Unlock()
	n.log.Info("hole punch", "peer", evt.Remote, "success", success, "err", msg)
}

func isCircuit(a ma.Multiaddr) bool {
	_, err := a.ValueForProtocol(ma.P_CIRCUIT)
	return err == nil
}

// memberACL lets only members reserve a slot, and relays only between
// members. The gater already refuses strangers' connections; this holds
// even for a connection admitted before a member was removed.
type memberACL struct{ g *Gater }

func (a memberACL) AllowReserve(p peer.ID, _ ma.Multiaddr) bool { return a.g.Allowed(p) }

func (a memberACL) AllowConnect(src peer.ID, _ ma.Multiaddr, dest peer.ID) bool {
	return a.g.Allowed(src) && a.g.Allowed(dest)
}
