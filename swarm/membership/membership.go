package membership

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/internal/owner"
	"github.com/annex-swarm/annex-swarm/swarm/membership/dhtstore"
)

// DefaultSyncInterval is how often a member reconnects to the members it is
// not connected to and compares definition versions with the ones it is.
const DefaultSyncInterval = 10 * time.Second

// Membership keeps this host in its swarm: it holds the adopted definition,
// admits only its members (through the Gater), keeps connections to them,
// runs the swarm's private DHT, and spreads newer signed versions.
type Membership struct {
	host      host.Host
	gater     *Gater
	log       *slog.Logger
	interval  time.Duration
	pingEvery time.Duration
	live      liveness
	persist   func(*rules.Definition) error

	// adoptMu serializes Join, Restore, Offer and Leave: each checks a
	// document against the current definition and adopts it as one step,
	// so two versions offered at once cannot both pass against the same
	// predecessor (and the older be adopted last), and a version already
	// adopted, offered again by another member, is not verified again.
	adoptMu sync.Mutex

	mu       sync.Mutex
	def      *rules.Definition // nil: no swarm joined
	dht      *dht.IpfsDHT
	proto    protocol.ID // the rules protocol registered for def's swarm
	lastSeen map[peer.ID]time.Time
	onAdopt  []func(*rules.Definition)
	stopped  bool // Run has returned: no DHT runs any more

	kick  chan struct{}
	tasks *owner.Group // the rules streams answered, owned by Run

	recMu     sync.Mutex
	recPath   string       // Options.DHTRecords; "" once it failed to open
	records   *dhtstore.DB // opened by the first DHT, closed at the end of Run
	recClosed bool         // Run has closed records: later DHTs keep theirs in memory
}

// Options configure a Membership.
type Options struct {
	Logger *slog.Logger
	// Interval between sync rounds; DefaultSyncInterval when zero.
	Interval time.Duration
	// PingInterval is how often each connected member is pinged
	// (liveness.go); DefaultPingInterval when zero.
	PingInterval time.Duration
	// Persist stores an adopted definition durably before it takes effect.
	Persist func(*rules.Definition) error
	// DHTRecords is the file that keeps the DHT's provider records
	// (dhtstore; the daemon's HOME/dht.db), opened with the first DHT and
	// closed when Run returns. Empty: kad-dht's in-memory map.
	DHTRecords string
}

// NewMembership returns a membership that has joined no swarm. Call Run to
// start its sync loop.
func New(h host.Host, g *Gater, o Options) *Membership {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval == 0 {
		o.Interval = DefaultSyncInterval
	}
	if o.PingInterval <= 0 {
		o.PingInterval = DefaultPingInterval
	}
	if o.Persist == nil {
		o.Persist = func(*rules.Definition) error { return nil }
	}
	m := &Membership{
		host: h, gater: g, log: o.Logger.With("component", "membership"), interval: o.Interval, persist: o.Persist,
		pingEvery: o.PingInterval, live: newLiveness(pingsMissed * o.PingInterval),
		lastSeen: map[peer.ID]time.Time{}, kick: make(chan struct{}, 1), tasks: owner.New(),
		recPath: o.DHTRecords,
	}
	h.Network().Notify(&network.NotifyBundle{
		ConnectedF: func(_ network.Network, c network.Conn) {
			m.live.answered(c.RemotePeer(), time.Now())
			m.seen(c.RemotePeer())
		},
		DisconnectedF: func(n network.Network, c network.Conn) {
			if n.Connectedness(c.RemotePeer()) != network.Connected {
				m.live.disconnected(c.RemotePeer())
			}
			m.seen(c.RemotePeer())
		},
	})
	return m
}

// OnAdopt registers f to be called (synchronously) each time a definition
// is adopted, with nil when the swarm is left (Leave), and once right away
// if a definition is adopted already. Hooks are called in the order they
// were registered; a hook should not depend on another having run.
func (m *Membership) OnAdopt(f func(*rules.Definition)) {
	m.mu.Lock()
	m.onAdopt = append(m.onAdopt, f)
	d := m.def
	m.mu.Unlock()
	if d != nil {
		f(d)
	}
}

// Current returns the adopted definition, or nil.
func (m *Membership) Current() *rules.Definition {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.def
}

// DHT returns the swarm's DHT, or nil when no swarm is joined.
func (m *Membership) DHT() *dht.IpfsDHT {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dht
}

// Join adopts a definition the user hands over (`annex-swarm join`). The
// document must verify on its own and list this host. If a definition of
// the same swarm is already adopted, the new one must follow it (VerifyNext),
// so join cannot roll a swarm back; a different swarm replaces the current one.
func (m *Membership) Join(ctx context.Context, signed []byte) (*rules.Definition, error) {
	m.adoptMu.Lock()
	defer m.adoptMu.Unlock()
	d, err := rules.Verify(signed)
	if err != nil {
		return nil, fmt.Errorf("verifying the definition: %w", err)
	}
	if cur := m.Current(); cur != nil && cur.ID == d.ID {
		if d, err = cur.VerifyNext(signed); err != nil {
			return nil, fmt.Errorf("verifying the definition against version %d: %w", cur.Version, err)
		}
	}
	if _, ok := d.Member(rules.PeerID(m.host.ID())); !ok {
		return nil, fmt.Errorf("this host (%s) is not a member of swarm %q version %d", m.host.ID(), d.Swarm, d.Version)
	}
	if err := m.adopt(ctx, d); err != nil {
		return nil, err
	}
	return d, nil
}

// Restore adopts a definition this host adopted before (read back from its
// home at start), trusting it as it was trusted then.
func (m *Membership) Restore(ctx context.Context, signed []byte) (*rules.Definition, error) {
	m.adoptMu.Lock()
	defer m.adoptMu.Unlock()
	d, err := rules.Verify(signed)
	if err != nil {
		return nil, fmt.Errorf("verifying the stored definition: %w", err)
	}
	return d, m.adopt(ctx, d)
}

// Offer considers a newer version from a member or `rules push`: it is
// adopted only when it follows the current definition (VerifyNext). It
// reports whether it was adopted; the very document adopted already (sent
// by several members at once) is not adopted again and is not an error.
func (m *Membership) Offer(ctx context.Context, signed []byte) (bool, error) {
	m.adoptMu.Lock()
	defer m.adoptMu.Unlock()
	cur := m.Current()
	if cur == nil {
		return false, fmt.Errorf("no swarm joined: use annex-swarm join first")
	}
	if bytes.Equal(cur.Signed(), signed) {
		return false, nil
	}
	next, err := cur.VerifyNext(signed)
	if err != nil {
		return false, err
	}
	return true, m.adopt(ctx, next)
}

// Leave forgets the swarm: no member is admitted any more, every connection
// closes and the DHT stops.
func (m *Membership) Leave() error {
	m.adoptMu.Lock()
	defer m.adoptMu.Unlock()
	m.mu.Lock()
	d := m.dht
	m.def, m.dht = nil, nil
	if m.proto != "" {
		m.host.RemoveStreamHandler(m.proto)
		m.proto = ""
	}
	hooks := append([]func(*rules.Definition){}, m.onAdopt...)
	m.mu.Unlock()
	for _, f := range hooks {
		f(nil)
	}
	m.gater.SetMembers(nil)
	for _, p := range m.host.Network().Peers() {
		_ = m.host.Network().ClosePeer(p)
	}
	if d != nil {
		if err := d.Close(); err != nil {
			return fmt.Errorf("stopping the DHT: %w", err)
		}
	}
	m.recMu.Lock()
	defer m.recMu.Unlock()
	if m.records != nil {
		if err := m.records.Drop(); err != nil {
			return fmt.Errorf("leaving the swarm: %w", err)
		}
	}
	return nil
}

// adopt makes d the current definition: persisted first, then the gater,
// the protocol handler and the DHT follow it, removed members are
// disconnected, and the others are told.
func (m *Membership) adopt(ctx context.Context, d *rules.Definition) error {
	if err := m.persist(d); err != nil {
		return fmt.Errorf("storing the definition: %w", err)
	}
	self := m.host.ID()
	_, member := d.Member(rules.PeerID(self))
	var allowed []peer.ID
	if member {
		for _, p := range peersOf(d) {
			if p != self {
				allowed = append(allowed, p)
			}
		}
	}
	for _, ai := range addrInfos(d) {
		if ai.ID != self {
			m.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, time.Hour)
		}
	}

	m.mu.Lock()
	old := m.def
	m.def = d
	newSwarm := old == nil || old.ID != d.ID
	var oldDHT *dht.IpfsDHT
	if newSwarm {
		if m.proto != "" {
			m.host.RemoveStreamHandler(m.proto)
		}
		m.proto = proto.RulesProtocolFor(d.ID.String())
		m.host.SetStreamHandler(m.proto, m.handleRules)
		oldDHT = m.dht
		m.dht = nil
	}
	hooks := append([]func(*rules.Definition){}, m.onAdopt...)
	m.mu.Unlock()

	for _, p := range m.gater.SetMembers(allowed) {
		m.log.Info("member removed; disconnecting", "peer", p)
		_ = m.host.Network().ClosePeer(p)
	}
	if oldDHT != nil {
		_ = oldDHT.Close()
	}
	if newSwarm && member {
		kd, err := m.startDHT(d)
		if err != nil {
			return err
		}
		m.mu.Lock()
		stopped := m.stopped
		if !stopped {
			m.dht = kd
		}
		m.mu.Unlock()
		if stopped {
			_ = kd.Close()
		}
	}
	if !member {
		m.log.Warn("this host is not a member of the adopted definition; talking to no one", "swarm", d.Swarm, "version", d.Version)
	}
	m.log.Info("definition adopted", "swarm", d.Swarm, "id", d.ID, "version", d.Version, "members", len(d.Members))
	for _, f := range hooks {
		f(d)
	}
	select {
	case m.kick <- struct{}{}:
	default:
	}
	return nil
}

// startDHT starts the swarm's private Kademlia DHT: a protocol prefix unique
// to the swarm ID, server mode, the members as bootstrap peers.
func (m *Membership) startDHT(d *rules.Definition) (*dht.IpfsDHT, error) {
	self := m.host.ID()
	var boot []peer.AddrInfo
	for _, ai := range addrInfos(d) {
		if ai.ID != self {
			boot = append(boot, ai)
		}
	}
	opts := []dht.Option{
		dht.ProtocolPrefix(protocol.ID("/annex-swarm/" + d.ID.String())),
		dht.Mode(dht.ModeServer),
		dht.DisableValues(),
		dht.BootstrapPeers(boot...),
		// Members dial each other from the definition and the routing
		// table fills from those connections; periodic refresh lookups
		// would only add connections a closed swarm does not need.
		dht.DisableAutoRefresh(),
		dht.AddressFilter(func(a []ma.Multiaddr) []ma.Multiaddr { return a }),
	}
	if store := m.recordStore(d); store != nil {
		opts = append(opts, dht.Datastore(store))
	}
	kd, err := dht.New(m.host, opts...)
	if err != nil {
		return nil, fmt.Errorf("starting the swarm DHT: %w", err)
	}
	return kd, nil
}

// recordStore returns the datastore for swarm d's provider records in the
// DHTRecords file, opening the file on first use, or nil to keep them in
// memory: no file is configured, Run has ended, or the file cannot be made
// (said once in a warning; a DHT without its file still works).
func (m *Membership) recordStore(d *rules.Definition) *dhtstore.Datastore {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	if m.recPath == "" || m.recClosed {
		return nil
	}
	if m.records == nil {
		db, err := dhtstore.Open(m.recPath, m.log)
		if err != nil {
			m.log.Warn("keeping the DHT's provider records in memory", "err", err)
			m.recPath = ""
			return nil
		}
		m.records = db
	}
	s, err := m.records.Swarm(d.ID.String())
	if err != nil {
		m.log.Warn("keeping the DHT's provider records in memory", "err", err)
		return nil
	}
	return s
}

// seen records that p connected or disconnected just now, and wakes the
// sync loop when p is a member.
func (m *Membership) seen(p peer.ID) {
	m.mu.Lock()
	m.lastSeen[p] = time.Now()
	m.mu.Unlock()
	if m.gater.Allowed(p) {
		select {
		case m.kick <- struct{}{}:
		default:
		}
	}
}

// LastSeen returns when p was last connected or disconnected (zero: never).
func (m *Membership) LastSeen(p peer.ID) time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lastSeen[p]
}

// Run connects to the members and syncs definitions every interval, and
// right away after a change or a new connection, and pings the connected
// members every ping interval (liveness.go), until ctx ends. It owns the
// swarm's DHT and the rules streams it answers: when it returns, they have
// ended, the DHT has stopped, and no later adoption starts one.
func (m *Membership) Run(ctx context.Context) {
	defer m.stopDHT()
	var tasks sync.WaitGroup
	tasks.Go(func() { m.tasks.Run(ctx) })
	defer tasks.Wait()
	pctx, stopPings := context.WithCancel(ctx)
	defer stopPings()
	tasks.Go(func() { m.pingLoop(pctx) })
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		m.syncRound(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.kick:
		}
	}
}

// stopDHT stops the DHT for good (the end of Run), then closes its record
// file: kad-dht's Close flushes the provider records it buffers and does
// not close the datastore it was given.
func (m *Membership) stopDHT() {
	m.mu.Lock()
	d := m.dht
	m.dht, m.stopped = nil, true
	m.mu.Unlock()
	if d != nil {
		if err := d.Close(); err != nil {
			m.log.Warn("stopping the DHT", "err", err)
		}
	}
	m.recMu.Lock()
	db := m.records
	m.records, m.recClosed = nil, true
	m.recMu.Unlock()
	if db != nil {
		if err := db.Close(); err != nil {
			m.log.Warn("closing the DHT's record file", "err", err)
		}
	}
}

// syncRound dials every member not connected and compares versions with each
// connected one, concurrently and bounded by the interval.
func (m *Membership) syncRound(ctx context.Context) {
	d := m.Current()
	if d == nil {
		return
	}
	if _, ok := d.Member(rules.PeerID(m.host.ID())); !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, m.interval)
	defer cancel()
	var wg sync.WaitGroup
	for _, ai := range addrInfos(d) {
		if ai.ID == m.host.ID() {
			continue
		}
		wg.Add(1)
		go func(ai peer.AddrInfo) {
			defer wg.Done()
			// A member behind NAT is first reached through a relay
			// (a limited connection, enough for the rules exchange);
			// hole punching then adds a direct one (docs/NAT.md).
			ctx := network.WithAllowLimitedConn(ctx, "rules sync")
			if len(m.host.Network().ConnsToPeer(ai.ID)) == 0 {
				if err := m.host.Connect(ctx, ai); err != nil {
					m.log.Debug("member unreachable", "peer", ai.ID, "err", err)
					return
				}
			}
			if err := m.syncWith(ctx, ai.ID); err != nil {
				m.log.Debug("rules sync failed", "peer", ai.ID, "err", err)
			}
		}(ai)
	}
	wg.Wait()
}
