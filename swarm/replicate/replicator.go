// Package replicate keeps every content a member holds at its swarm's
// target copy count (docs/REPLICATION.md): it places new copies (seeding,
// with super-seeding), answers placements as a holder, repairs after a
// holder is lost, trims extra copies, spreads signed removal records and
// drains before a member leaves. It fetches through the chunk exchange and
// reads the adopted definition through the narrow interfaces below.
package replicate

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/internal/owner"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// This file holds the replication engine's state, its options and its
// loop. The placement policy is in policy.go, the placer in place.go, the
// holder's side of a placement in hold.go, super-seeding in seed.go, the
// queries in survey.go, the repair round in repair.go, drain in drain.go,
// removals in removals*.go and remove.go, re-coding in recode.go and the
// resolution of re-coded roots in resolve.go.

// Exchange is what the replicator needs of the chunk exchange
// (*exchange.Exchange implements it).
type Exchange interface {
	// Protocol is the exchange protocol of the adopted swarm, "" when none.
	Protocol() protocol.ID
	// Fetch fetches root into the local store from every holder.
	Fetch(ctx context.Context, root cid.Cid, progress func(exchange.FetchProgress)) error
	// FetchInto fetches root into w without storing it (chunks held here
	// are read from the store) and returns its manifest.
	FetchInto(ctx context.Context, root cid.Cid, w io.WriterAt, progress func(exchange.FetchProgress)) (*chunk.Manifest, error)
	// FetchManifest fetches and checks the manifest root from p.
	FetchManifest(ctx context.Context, p peer.ID, root cid.Cid) (*chunk.Manifest, error)
	// Announce announces on the DHT, in the background, that this host
	// holds root.
	Announce(root cid.Cid)
	// SetServeGate installs the super-seeding gate on the serving side.
	SetServeGate(g exchange.ServeGate)
	// SetOverHint installs the function told of a content held here that
	// a survey said is over target.
	SetOverHint(f func(root cid.Cid))
}

// Membership is what the replicator needs of the membership
// (*membership.Membership implements it).
type Membership interface {
	// Current is the adopted definition, or nil.
	Current() *rules.Definition
	// Alive reports whether p is alive by a signal of its own (a ping
	// answered lately, swarm/membership/liveness.go), never by how long a
	// survey takes; since is when it was last known alive (zero: never).
	Alive(p peer.ID) (alive bool, since time.Time)
	// Returned reports when p was last heard from again after a silence,
	// and how long the silence was (zero time: never).
	Returned(p peer.ID) (at time.Time, away time.Duration)
	// Reconnecting is how long after a member returns the others of a
	// healed partition may still be reconnecting.
	Reconnecting() time.Duration
}

// ErrNoSwarm is returned when no swarm is joined. It is p2pstream.ErrNoSwarm.
var ErrNoSwarm = p2pstream.ErrNoSwarm

// Defaults of Options.
const (
	// DefaultRepairInterval is the period of the repair round.
	DefaultRepairInterval = 30 * time.Second
	// DefaultPlaceFetches is how many placements a member fetches at once.
	DefaultPlaceFetches = 4
	// DefaultPlaceStall is how long a placement may make no progress
	// (docs/REPLICATION.md "Failure and progress").
	DefaultPlaceStall = 30 * time.Second
)

// noSpaceFor is how long a member that refused a copy for lack of room is
// skipped by placement.
const noSpaceFor = time.Minute

// Options configure a Replicator.
type Options struct {
	Host     host.Host
	Store    *chunk.Store
	Exchange Exchange
	Members  Membership
	Logger   *slog.Logger
	// DialTimeout bounds opening a stream to a member;
	// exchange.DefaultDialTimeout when zero.
	DialTimeout time.Duration
	// Interval is the period of the repair round; DefaultRepairInterval when zero.
	Interval time.Duration
	// PlaceFetches bounds the placements fetched at once; DefaultPlaceFetches when zero.
	PlaceFetches int
	// PlaceStall is how long a placement may make no progress before the
	// placer abandons it for the next candidate; DefaultPlaceStall when zero.
	PlaceStall time.Duration
	// Placements bounds the repair placements run at once from here;
	// DefaultPlacements when zero.
	Placements int
	// PlaceQueue bounds the contents waiting for a repair placement;
	// DefaultPlaceQueue when zero.
	PlaceQueue int
	// Recheck is the period over which every settled content is surveyed
	// again (repair.go); DefaultRecheck when zero.
	Recheck time.Duration
	// SurveyPage and SurveyPageTimeout set the paging of surveys
	// (survey.go); surveyPage and surveyPageTimeout when zero.
	SurveyPage        int
	SurveyPageTimeout time.Duration
	// LoadRemovals, SaveRemovals and AppendRemovals read, replace
	// (atomically) and extend (synced) the durable removal records file
	// (docs/REPLICATION.md "Removal records file"); nil: not durable.
	LoadRemovals   func() ([]byte, error)
	SaveRemovals   func([]byte) error
	AppendRemovals func([]byte) error
	// LoadRepairState and SaveRepairState read and replace (atomically)
	// the repair state file (docs/REPLICATION.md "Repair state file");
	// nil: the kept state is not durable and a restart surveys everything.
	LoadRepairState func() ([]byte, error)
	SaveRepairState func([]byte) error
	// Put stores a content read from r (size bytes, git-annex key key)
	// and seeds it as a put on this member does, under the current rules,
	// returning its root once the put succeeded (its success threshold).
	// Re-coding (recode.go) puts a content again through it; nil: this
	// member never re-codes.
	Put func(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, error)
	// TempDir holds the temporary file of a content fetched for a
	// re-coding; os.TempDir() when empty.
	TempDir string
}

// Replicator keeps every content this member holds at its swarm's target
// copy count: it seeds new content to chosen holders, repairs after a
// holder is lost, trims extra copies, spreads removals and drains on leave.
// It is safe for concurrent use.
type Replicator struct {
	host    host.Host
	store   *chunk.Store
	x       Exchange
	members Membership
	log     *slog.Logger
	dial    time.Duration
	every   time.Duration
	slots   chan struct{} // placement fetch slots
	stall   time.Duration // Options.PlaceStall
	load    func() ([]byte, error)
	save    func([]byte) error
	appendR func([]byte) error
	logged  int // records in the removal records file, under logMu
	logMu   sync.Mutex
	seed    *superSeed
	tasks   *owner.Group // background work: placements, resumes, announcements, served streams
	started time.Time    // members never seen count as gone since then
	queue   *placeQueue
	workers int    // placement workers
	recheck uint64 // rounds in the recheck period (Recheck / Interval)
	slices  uint64 // a settled content is rechecked every slices rounds: recheckSlices, set by each round

	pageSize    int           // roots per survey page
	pageTimeout time.Duration // bound of one survey page

	loadState func() ([]byte, error) // Options.LoadRepairState
	saveState func([]byte) error     // Options.SaveRepairState
	dirty     bool                   // known changed since the last save, under mu
	savedAt   time.Time              // last save of the repair state

	mu       sync.Mutex
	slot     *p2pstream.Slot             // the replication protocol of the adopted swarm
	known    map[string]*knownState      // root → what the last check of it found
	roundNo  uint64                      // repair rounds run
	rulesVer int64                       // version of the definition the kept state was checked under
	over     map[string]time.Time        // root → since when over-replicated
	pending  map[string]map[peer.ID]bool // root → placements in flight from here
	ended    map[string]time.Time        // root → when a placement of it from here last ended (pruned each round)
	fetching map[string]int              // roots being fetched here (placements, resumes)
	puts     atomic.Int64                // puts in flight here (BeginPut)
	noSpace  map[peer.ID]time.Time
	noRoom   map[string]bool // roots for which no member had room at the last try
	summary  Summary
	tombs    *removals
	coded    codedBook                                                                       // the coded contents' checks (coded_repair.go)
	recodes  recodeBook                                                                      // contents due for re-coding (recode.go)
	put      func(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, error) // Options.Put
	tempDir  string                                                                          // Options.TempDir
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
	Unknown     int       // with an alive storage member that did not answer
	Checked     int       // checked (surveyed) in the last round; the others were settled
	Queued      int       // waiting in the placement queue (now)
	Placing     int       // repair placements running (now)
	Placements  uint64    // repair placements started since start
	Removed     int       // removal records held
	LastRound   time.Time // zero before the first round

	// Coded counts the coded contents held here (whole or a shard set) and
	// Survives counts them by how many more member losses they survive.
	Coded    int
	Survives map[int]int
}

// Summary returns the state as of the last repair round.
func (r *Replicator) Summary() Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.summary
	s.Removed = r.tombs.len()
	s.Queued, s.Placing, s.Placements = r.queue.counts()
	return s
}

// New returns a replicator with the durable removal records loaded; it
// installs its super-seeding gate on o.Exchange. Call SetSwarm when a swarm
// is adopted and Run to start its rounds.
func New(o Options) *Replicator {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = DefaultRepairInterval
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = exchange.DefaultDialTimeout
	}
	if o.PlaceFetches <= 0 {
		o.PlaceFetches = DefaultPlaceFetches
	}
	if o.PlaceStall <= 0 {
		o.PlaceStall = DefaultPlaceStall
	}
	if o.Placements <= 0 {
		o.Placements = DefaultPlacements
	}
	if o.PlaceQueue <= 0 {
		o.PlaceQueue = DefaultPlaceQueue
	}
	if o.Recheck <= 0 {
		o.Recheck = DefaultRecheck
	}
	if o.SurveyPage <= 0 {
		o.SurveyPage = surveyPage
	}
	if o.SurveyPageTimeout <= 0 {
		o.SurveyPageTimeout = surveyPageTimeout
	}
	recheck := max(uint64(o.Recheck/o.Interval), 1)
	r := &Replicator{
		host: o.Host, store: o.Store, x: o.Exchange, members: o.Members,
		log: o.Logger.With("component", "replicator"), every: o.Interval, dial: o.DialTimeout,
		slots: make(chan struct{}, o.PlaceFetches), stall: o.PlaceStall, load: o.LoadRemovals, save: o.SaveRemovals, appendR: o.AppendRemovals,
		seed: newSuperSeed(o.Host), tasks: owner.New(), started: time.Now(),
		queue: newPlaceQueue(o.PlaceQueue), workers: o.Placements, recheck: recheck, slices: recheck, pageSize: o.SurveyPage, pageTimeout: o.SurveyPageTimeout,
		known: map[string]*knownState{}, over: map[string]time.Time{},
		pending: map[string]map[peer.ID]bool{}, ended: map[string]time.Time{}, fetching: map[string]int{},
		noSpace: map[peer.ID]time.Time{}, noRoom: map[string]bool{},
		tombs:     newRemovals(),
		loadState: o.LoadRepairState, saveState: o.SaveRepairState,
		put: o.Put, tempDir: o.TempDir, recodes: recodeBook{due: map[string]*recodeDue{}, poke: make(chan struct{}, 1)},
	}
	r.slot = p2pstream.NewSlot(o.Host, proto.ReplicationProtocolFor, r.handle)
	o.Exchange.SetServeGate(r.seed.allow)
	o.Exchange.SetOverHint(r.Recheck)
	r.loadRemovals()
	r.loadKnown()
	return r
}

// SetSwarm registers the replication protocol of swarm id, removing the one
// of an earlier swarm. An empty id only removes it.
func (r *Replicator) SetSwarm(id string) { r.slot.Set(id) }

// Run runs a repair round every interval, give or take a tenth at random
// (so that members started together do not survey each other in the same
// second), and the placement workers, until ctx ends. It owns every
// piece of the replicator's background work (placements started by Seed or
// by a round, resumed fetches, announcements, and the replication streams
// served): they run under ctx, and Run returns only after all of them have
// ended, so the store may be closed once it has. Outside Run the
// replicator starts no work: Seed places nothing in the background and
// replication streams are reset.
func (r *Replicator) Run(ctx context.Context) {
	// The grace after a start counts from here: a member not seen since
	// is not taken for gone before repair_after has passed. The rounds,
	// which read it, run on this goroutine.
	r.started = time.Now()
	var tasks sync.WaitGroup
	tasks.Go(func() { r.tasks.Run(ctx) })
	defer tasks.Wait()
	for range r.workers {
		tasks.Go(func() { r.placeWorker(ctx) })
	}
	if r.put != nil {
		tasks.Go(func() { r.recodeWorker(ctx) })
	}
	defer r.stopping()
	t := time.NewTimer(jitter(r.every))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.round(ctx)
		t.Reset(jitter(r.every))
	}
}

// stopping ends Run: the kept state is saved once more.
func (r *Replicator) stopping() { r.saveKnown(nil, true) }

// jitter returns d give or take a tenth, at random.
func jitter(d time.Duration) time.Duration {
	if d < 10 {
		return d
	}
	return d - d/10 + rand.N(d/5)
}

// taskWait bounds how long work handed to the background waits for Run to
// take it.
const taskWait = 5 * time.Second

// background runs f under Run's context in a goroutine Run waits for, and
// reports whether it will run (not when Run has stopped, or has not
// started within taskWait or before ctx ends).
func (r *Replicator) background(ctx context.Context, f func(ctx context.Context)) bool {
	wait, cancel := context.WithTimeout(ctx, taskWait)
	defer cancel()
	return r.tasks.Go(wait, f)
}
