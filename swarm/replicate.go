package swarm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
)

// This file holds the replication engine's state and its placement policy
// (docs/REPLICATION.md "Counting", "Placement"). Seeding and placement are
// in replicate_place.go, the repair round in replicate_repair.go, removal
// records in replicate_tomb.go and super-seeding in replicate_seed.go.

// Defaults of ReplicatorOptions.
const (
	// DefaultRepairInterval is the period of the repair round.
	DefaultRepairInterval = 30 * time.Second
	// DefaultPlaceFetches is how many placements a member fetches at once.
	DefaultPlaceFetches = 4
)

// noSpaceFor is how long a member that refused a copy for lack of room is
// skipped by placement.
const noSpaceFor = time.Minute

// ReplicatorOptions configure a Replicator.
type ReplicatorOptions struct {
	Host     host.Host
	Store    *chunk.Store
	Exchange *Exchange
	Members  *Membership
	Logger   *slog.Logger
	// Interval is the period of the repair round; DefaultRepairInterval when zero.
	Interval time.Duration
	// PlaceFetches bounds the placements fetched at once; DefaultPlaceFetches when zero.
	PlaceFetches int
	// LoadRemovals, SaveRemovals and AppendRemovals read, replace
	// (atomically) and extend (synced) the durable removal records file
	// (docs/REPLICATION.md "Removal records file"); nil: not durable.
	LoadRemovals   func() ([]byte, error)
	SaveRemovals   func([]byte) error
	AppendRemovals func([]byte) error
}

// Replicator keeps every content this member holds at its swarm's target
// copy count: it seeds new content to chosen holders, repairs after a
// holder is lost, trims extra copies, spreads removals and drains on leave.
// It is safe for concurrent use.
type Replicator struct {
	host    host.Host
	store   *chunk.Store
	x       *Exchange
	members *Membership
	log     *slog.Logger
	every   time.Duration
	slots   chan struct{} // placement fetch slots
	load    func() ([]byte, error)
	save    func([]byte) error
	appendR func([]byte) error
	logged  int // records in the removal records file, under logMu
	logMu   sync.Mutex
	seed    *superSeed
	kick    chan struct{}
	started time.Time // members never seen count as gone since then

	mu       sync.Mutex
	bg       context.Context             // the Run context, for background work
	slot     *protoSlot                  // the replication protocol of the adopted swarm
	known    map[string]map[peer.ID]bool // root → complete holders at the last round
	over     map[string]time.Time        // root → since when over-replicated
	pending  map[string]map[peer.ID]bool // root → placements in flight from here
	fetching map[string]int              // roots being fetched here (placements, resumes)
	noSpace  map[peer.ID]time.Time
	gone     map[peer.ID]time.Time // members that failed a survey, since when
	noRoom   map[string]bool       // roots for which no member had room at the last try
	summary  Summary
	tombs    *removals
}

// Summary is the replication state of the contents this member holds, as
// of its last repair round (docs/REPLICATION.md "Status").
type Summary struct {
	Contents    int       // contents held (complete) here
	AtTarget    int       // with at least `copies` storage holders
	BelowTarget int       // with fewer than `copies`
	BelowMin    int       // with fewer than `copies_min`
	InRepair    int       // with a placement in flight from here
	NoRoom      int       // for which no storage member had room
	Removed     int       // removal records held
	LastRound   time.Time // zero before the first round
}

// NewReplicator returns a replicator with the durable removal records
// loaded; call SetSwarm when a swarm is adopted and Run to start its rounds.
func NewReplicator(o ReplicatorOptions) *Replicator {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = DefaultRepairInterval
	}
	if o.PlaceFetches <= 0 {
		o.PlaceFetches = DefaultPlaceFetches
	}
	r := &Replicator{
		host: o.Host, store: o.Store, x: o.Exchange, members: o.Members,
		log: o.Logger.With("component", "replicator"), every: o.Interval,
		slots: make(chan struct{}, o.PlaceFetches), load: o.LoadRemovals, save: o.SaveRemovals, appendR: o.AppendRemovals,
		seed: newSuperSeed(o.Host), kick: make(chan struct{}, 1),
		bg: context.Background(), started: time.Now(),
		known: map[string]map[peer.ID]bool{}, over: map[string]time.Time{},
		pending: map[string]map[peer.ID]bool{}, fetching: map[string]int{},
		noSpace: map[peer.ID]time.Time{}, gone: map[peer.ID]time.Time{}, noRoom: map[string]bool{},
		tombs: newRemovals(),
	}
	r.slot = &protoSlot{host: o.Host, forSwarm: proto.ReplicationProtocolFor, handler: r.handle}
	o.Exchange.setServeGate(r.seed.allow)
	r.loadRemovals()
	return r
}

// SetSwarm registers the replication protocol of swarm id, removing the one
// of an earlier swarm. An empty id only removes it.
func (r *Replicator) SetSwarm(id string) { r.slot.set(id) }

// Summary returns the state as of the last repair round.
func (r *Replicator) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.summary
	s.Removed = r.tombs.len()
	return s
}

// Run runs a repair round every interval (and soon after a kick) until ctx
// ends.
func (r *Replicator) Run(ctx context.Context) {
	r.mu.Lock()
	r.bg = ctx
	r.mu.Unlock()
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.kick:
		}
		r.round(ctx)
	}
}

// background returns the context background work runs under.
func (r *Replicator) background() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bg
}

// policy is the part of the definition the replicator works from.
type policy struct {
	def     *rules.Definition
	self    peer.ID
	storage bool // this member has role storage
	copies  int
	min     int
	grace   time.Duration
}

// currentPolicy returns the policy of the adopted definition, or false when
// no swarm is joined or this host is not a member of it.
func (r *Replicator) currentPolicy() (policy, bool) {
	def := r.members.Current()
	if def == nil {
		return policy{}, false
	}
	me, ok := def.Member(rules.PeerID(r.host.ID()))
	if !ok {
		return policy{}, false
	}
	rep := def.Replication
	return policy{def: def, self: r.host.ID(), storage: me.Role == rules.RoleStorage,
		copies: max(rep.Copies, 1), min: max(min(rep.CopiesMin, rep.Copies), 1), grace: rep.RepairAfter}, true
}

// isStorage reports whether p is a storage member of the policy's definition.
func (pl policy) isStorage(p peer.ID) bool {
	m, ok := pl.def.Member(rules.PeerID(p))
	return ok && m.Role == rules.RoleStorage
}

// storagePeers lists the storage members other than this host.
func (pl policy) storagePeers() []peer.ID {
	var out []peer.ID
	for _, m := range pl.def.Members {
		if m.Role == rules.RoleStorage && peer.ID(m.Peer) != pl.self {
			out = append(out, peer.ID(m.Peer))
		}
	}
	return out
}

// connected reports whether this host has a connection to p.
func (r *Replicator) connected(p peer.ID) bool {
	return r.host.Network().Connectedness(p) == network.Connected
}

// inGrace reports whether p, not connected, went away less than grace ago:
// since it last failed to answer a survey, else since its connection
// closed; a member never seen since start counts from the replicator's
// start. The caller holds r.mu.
func (r *Replicator) inGrace(p peer.ID, grace time.Duration) bool {
	t, ok := r.gone[p]
	if !ok {
		if t = r.members.LastSeen(p); t.IsZero() {
			t = r.started
		}
	}
	return time.Since(t) < grace
}

// score is p's rendezvous weight for root: the first 8 bytes of
// SHA-256(root's binary CID ‖ p's binary peer ID).
func score(root cid.Cid, p peer.ID) uint64 {
	h := sha256.New()
	h.Write(root.Bytes())
	h.Write([]byte(p))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// rank sorts ps by descending rendezvous weight for root, in place.
func rank(root cid.Cid, ps []peer.ID) []peer.ID {
	slices.SortFunc(ps, func(a, b peer.ID) int {
		sa, sb := score(root, a), score(root, b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return ps
}

// order returns the placement order of cands for root: by rendezvous
// weight, except that a member adding a group not yet covered (by holders
// or by members picked before it) goes before one that adds none.
func order(root cid.Cid, def *rules.Definition, cands, holders []peer.ID) []peer.ID {
	covered := map[string]bool{}
	groups := func(p peer.ID) []string {
		m, _ := def.Member(rules.PeerID(p))
		return m.Groups
	}
	for _, h := range holders {
		for _, g := range groups(h) {
			covered[g] = true
		}
	}
	left := rank(root, slices.Clone(cands))
	out := make([]peer.ID, 0, len(left))
	for len(left) > 0 {
		pick := 0
		for i, p := range left {
			if slices.ContainsFunc(groups(p), func(g string) bool { return !covered[g] }) {
				pick = i
				break
			}
		}
		p := left[pick]
		left = slices.Delete(left, pick, pick+1)
		for _, g := range groups(p) {
			covered[g] = true
		}
		out = append(out, p)
	}
	return out
}

// candidates returns, in placement order, the connected storage members
// that are not in skip and did not refuse for lack of room lately.
func (r *Replicator) candidates(pl policy, root cid.Cid, skip map[peer.ID]bool, holders []peer.ID) []peer.ID {
	r.mu.Lock()
	var cands []peer.ID
	for _, p := range pl.storagePeers() {
		if skip[p] || !r.connected(p) {
			continue
		}
		if t, ok := r.noSpace[p]; ok && time.Since(t) < noSpaceFor {
			continue
		}
		cands = append(cands, p)
	}
	r.mu.Unlock()
	return order(root, pl.def, cands, holders)
}

// addPending records a placement of root on p in flight from here; the
// returned func removes it.
func (r *Replicator) addPending(root cid.Cid, p peer.ID) func() {
	k := root.KeyString()
	r.mu.Lock()
	if r.pending[k] == nil {
		r.pending[k] = map[peer.ID]bool{}
	}
	r.pending[k][p] = true
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.pending[k], p)
		if len(r.pending[k]) == 0 {
			delete(r.pending, k)
		}
		r.mu.Unlock()
	}
}

// pendingOf returns the members root is being placed on from here.
func (r *Replicator) pendingOf(root cid.Cid) map[peer.ID]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[peer.ID]bool{}
	for p := range r.pending[root.KeyString()] {
		out[p] = true
	}
	return out
}
