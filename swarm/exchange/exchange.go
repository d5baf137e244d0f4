// Package exchange is the chunk exchange of a swarm (docs/EXCHANGE.md,
// docs/PROTOCOL.md "Chunk exchange"): it serves chunks and manifests to the
// members, fetches content from every holder at once (the multi-source
// fetcher), announces and finds holders on the swarm's DHT, and limits
// bandwidth.
package exchange

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/internal/owner"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Defaults of Options.
const (
	// DefaultIdleTimeout is how long a stream may stay without a message
	// before it is reset.
	DefaultIdleTimeout = 60 * time.Second
	// DefaultReprovideInterval is how often Run announces every manifest
	// held again. kad-dht keeps provider records for 48 h.
	DefaultReprovideInterval = 12 * time.Hour
)

// ErrNoSwarm is returned by Fetch when SetSwarm has not been called: there
// is no exchange protocol to speak. It is p2pstream.ErrNoSwarm.
var ErrNoSwarm = p2pstream.ErrNoSwarm

// Options configure an Exchange.
type Options struct {
	Host  host.Host
	Store *chunk.Store
	// Logger receives the exchange's log; slog.Default() when nil.
	Logger *slog.Logger
	// Routing returns the swarm's DHT, or nil when no swarm is joined. Take
	// care not to return a nil *dht.IpfsDHT inside a non-nil interface.
	Routing func() routing.ContentRouting
	// Members returns the other members of the swarm; the connected ones
	// are asked directly when looking for holders.
	Members func() []peer.ID
	// Sent and Received count chunk payload bytes sent and received (all
	// chunks, duplicates and corrupt ones included). Fresh counters when nil.
	Sent, Received *atomic.Int64
	// IdleTimeout bounds the wait for the next message on a stream;
	// DefaultIdleTimeout when zero.
	IdleTimeout time.Duration
	// ReprovideInterval is the period of Run's announcements;
	// DefaultReprovideInterval when zero.
	ReprovideInterval time.Duration
	// LastAnnounced and SetAnnounced read and durably record when Run last
	// announced every manifest held (provide.go), so that a start does not
	// announce again what was announced less than ReprovideInterval ago;
	// nil: not durable.
	LastAnnounced func() (time.Time, error)
	SetAnnounced  func(time.Time) error
	// Fetch tunes the fetcher; zero fields take their defaults.
	Fetch FetchOptions
}

// Exchange serves chunks to the members of the swarm, fetches content from
// them and announces what this host holds on the swarm's DHT. It is safe
// for concurrent use.
type Exchange struct {
	host      host.Host
	store     *chunk.Store
	log       *slog.Logger
	routing   func() routing.ContentRouting
	members   func() []peer.ID
	sent      *atomic.Int64
	received  *atomic.Int64
	idle      time.Duration
	reprovide time.Duration
	lastAnn   func() (time.Time, error)
	setAnn    func(time.Time) error
	fetchOpts FetchOptions
	bw        *bandwidth

	// corrupt makes the serving side flip a byte of every chunk sent
	// (fault injection). Only faultCorruptFromEnv, constant false in
	// production builds, and tests of this package set it.
	corrupt atomic.Bool
	// gate, when set, may refuse a BlockRequest with Busy (SetServeGate).
	gate atomic.Pointer[ServeGate]
	// overHint, when set, is told of a content held here in full that a
	// survey said is over target (SetOverHint).
	overHint atomic.Pointer[func(cid.Cid)]
	// coded serves shards of coded contents by coding on demand (ServeCoded).
	coded codedServer
	// files serves contents straight from files (ServeFile).
	files fileContents
	// rebuilt serves shards rebuilt by a repair (ServeShards).
	rebuilt rebuiltServer

	slot  *p2pstream.Slot // the exchange protocol of the adopted swarm
	tasks *owner.Group    // the streams served, owned by Run
}

// NewExchange returns an Exchange that serves nothing until SetSwarm.
func New(o Options) *Exchange {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Routing == nil {
		o.Routing = func() routing.ContentRouting { return nil }
	}
	if o.Members == nil {
		o.Members = func() []peer.ID { return nil }
	}
	if o.Sent == nil {
		o.Sent = new(atomic.Int64)
	}
	if o.Received == nil {
		o.Received = new(atomic.Int64)
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.ReprovideInterval <= 0 {
		o.ReprovideInterval = DefaultReprovideInterval
	}
	x := &Exchange{
		host: o.Host, store: o.Store, log: o.Logger.With("component", "exchange"),
		routing: o.Routing, members: o.Members, sent: o.Sent, received: o.Received,
		idle: o.IdleTimeout, reprovide: o.ReprovideInterval, lastAnn: o.LastAnnounced, setAnn: o.SetAnnounced, fetchOpts: o.Fetch.withDefaults(),
		bw: newBandwidth(), tasks: owner.New(),
	}
	x.slot = p2pstream.NewSlot(o.Host, proto.ExchangeProtocolFor, x.handle)
	if faultCorruptFromEnv() {
		x.log.Warn("FAULT INJECTION: every chunk served will be corrupted")
		x.corrupt.Store(true)
	}
	return x
}

// SetSwarm registers the stream handler on the exchange protocol of swarm
// id (proto.ExchangeProtocolFor), removing the one of an earlier swarm. An
// empty id only removes it.
func (x *Exchange) SetSwarm(id string) { x.slot.Set(id) }

// Protocol returns the exchange protocol in use, or "" before SetSwarm.
func (x *Exchange) Protocol() protocol.ID { return x.slot.Get() }

// SetLimits sets the upload and download limits on chunk payload, in bytes
// per second across all streams; 0 means unlimited. It takes effect at once.
func (x *Exchange) SetLimits(upload, download int64) { x.bw.set(upload, download) }

// BytesSent returns the chunk payload bytes sent since start.
func (x *Exchange) BytesSent() int64 { return x.sent.Load() }

// BytesReceived returns the chunk payload bytes received since start.
func (x *Exchange) BytesReceived() int64 { return x.received.Load() }
