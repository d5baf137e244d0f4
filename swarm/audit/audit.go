// Package audit challenges the holders of the contents this member holds to
// prove, with a fresh nonce, that they still hold them (docs/RELIABILITY.md
// "Audits"), and answers such challenges. A holder that lost or corrupted a
// chunk behind its daemon's back is so found without anyone asking for the
// file: the challenger has the content placed anew through the replicator,
// and the holder, whose verifying read dropped the chunk, fetches the
// content back itself.
package audit

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/internal/owner"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
)

// This file holds the auditor's options, state, counters and loop; the
// challenger's round is in challenge.go, the holder's side in serve.go.

// Replicator is what the auditor needs of the replicator
// (*replicate.Replicator implements it).
type Replicator interface {
	// KnownHolders is who held root at the last repair round, ranked.
	KnownHolders(root cid.Cid) (replicate.Holders, bool)
	// AuditFailed tells that p failed an audit of root, so that root is
	// placed anew.
	AuditFailed(ctx context.Context, root cid.Cid, p peer.ID) int
	// Recheck makes root due at the next repair round: this member lost a
	// chunk of it, and the round resumes the copy.
	Recheck(root cid.Cid)
}

// Defaults of Options (docs/RELIABILITY.md "Audits" gives the reasons).
const (
	// DefaultInterval is the period of the audit round.
	DefaultInterval = time.Hour
	// DefaultChallenges bounds the challenges one round sends.
	DefaultChallenges = 64
	// DefaultBytesPerDay bounds the chunk bytes the challenger reads (to
	// check answers) in 24 hours; the challenged holders read as much.
	DefaultBytesPerDay = 1 << 30
	// DefaultTimeout bounds the wait for one answer; no answer in time
	// counts as unknown, not as a failure.
	DefaultTimeout = 10 * time.Second
)

// Options configure an Auditor.
type Options struct {
	Host  host.Host
	Store *chunk.Store
	// Replicator says who holds what and re-places a failed holder's
	// content; nil: the auditor only answers challenges.
	Replicator Replicator
	Logger     *slog.Logger
	// Interval is the period of the round (it starts up to a quarter of it
	// early, at random, so that members do not audit in step);
	// DefaultInterval when zero.
	Interval time.Duration
	// Challenges bounds the challenges of one round; DefaultChallenges when zero.
	Challenges int
	// BytesPerDay bounds the chunk bytes read to check answers in 24 hours;
	// DefaultBytesPerDay when zero.
	BytesPerDay int64
	// Timeout bounds the wait for one answer; DefaultTimeout when zero.
	Timeout time.Duration
	// DialTimeout bounds opening a stream; exchange.DefaultDialTimeout when zero.
	DialTimeout time.Duration
}

// Stats counts the audits of this member (docs/RELIABILITY.md "Audits").
type Stats struct {
	Sent    int64 // challenges sent
	Passed  int64 // answered with the right proof
	Failed  int64 // answered missing or with a wrong proof
	Unknown int64 // not answered in time, or the stream failed
	// Served counts challenges answered here; LostHere those answered
	// missing because this member's copy of the chunk was lost or corrupt.
	Served   int64
	LostHere int64
	// BytesToday are the chunk bytes read to check answers in the current
	// 24-hour budget window.
	BytesToday int64
	LastRound  time.Time // when the last round started; zero before the first
}

// Auditor challenges the other holders of the contents this member holds
// and answers their challenges. It is safe for concurrent use.
type Auditor struct {
	host        host.Host
	store       *chunk.Store
	repl        Replicator
	log         *slog.Logger
	every       time.Duration
	challenges  int
	bytesPerDay int64
	timeout     time.Duration
	dial        time.Duration
	slot        *p2pstream.Slot
	tasks       *owner.Group // served streams and sweeps
	serving     chan struct{}

	mu       sync.Mutex
	stats    Stats
	window   time.Time        // start of the byte budget's 24-hour window
	sweeping map[string]bool  // roots being swept here
	peers    map[peer.ID]bool // members with an audit stream served now
	rng      *rand.Rand       // under mu
}

// maxServing bounds the audit streams served at once.
const maxServing = 2

// New returns an auditor. Call SetSwarm when a swarm is adopted and Run to
// start its rounds and to serve challenges.
func New(o Options) *Auditor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Challenges <= 0 {
		o.Challenges = DefaultChallenges
	}
	if o.BytesPerDay <= 0 {
		o.BytesPerDay = DefaultBytesPerDay
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = exchange.DefaultDialTimeout
	}
	a := &Auditor{
		host: o.Host, store: o.Store, repl: o.Replicator, log: o.Logger.With("component", "audit"),
		every: o.Interval, challenges: o.Challenges, bytesPerDay: o.BytesPerDay,
		timeout: o.Timeout, dial: o.DialTimeout, tasks: owner.New(),
		serving: make(chan struct{}, maxServing), window: time.Now(),
		sweeping: map[string]bool{}, peers: map[peer.ID]bool{},
		rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
	a.slot = p2pstream.NewSlot(o.Host, proto.AuditProtocolFor, a.handle)
	return a
}

// SetSwarm registers the audit protocol of swarm id, removing the one of
// an earlier swarm. An empty id only removes it.
func (a *Auditor) SetSwarm(id string) { a.slot.Set(id) }

// Stats returns the counters.
func (a *Auditor) Stats() Stats {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.stats
}

// Run runs a round every interval (less up to a quarter, at random) until
// ctx ends, and serves challenges meanwhile; it returns after the streams
// it serves have ended.
func (a *Auditor) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { a.tasks.Run(ctx) })
	defer wg.Wait()
	for {
		t := time.NewTimer(a.nextWait())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if a.repl != nil {
			a.Round(ctx)
		}
	}
}

// nextWait is the interval less a random part of up to a quarter of it:
// a content is audited at least once per interval, and members that
// started together drift apart.
func (a *Auditor) nextWait() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.every - time.Duration(a.rng.Int64N(int64(a.every)/4+1))
}

// spend takes n bytes from the daily budget and reports whether they fit.
func (a *Auditor) spend(n int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if time.Since(a.window) >= 24*time.Hour {
		a.window, a.stats.BytesToday = time.Now(), 0
	}
	if a.stats.BytesToday+n > a.bytesPerDay {
		return false
	}
	a.stats.BytesToday += n
	return true
}

// count adds to the counters under mu.
func (a *Auditor) count(f func(s *Stats)) {
	a.mu.Lock()
	f(&a.stats)
	a.mu.Unlock()
}

// Interval is the period of the round.
func (a *Auditor) Interval() time.Duration { return a.every }

// BytesPerDay is the daily byte budget.
func (a *Auditor) BytesPerDay() int64 { return a.bytesPerDay }
