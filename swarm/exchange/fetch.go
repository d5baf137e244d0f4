package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// This file implements the multi-source fetcher (docs/EXCHANGE.md
// "Fetching"): the coordinator and one session per source.

// ErrNoHolder is returned by Fetch when no reachable source holds the
// manifest or some chunk of it; the message says which and how many.
var ErrNoHolder = errors.New("swarm: no holder")

// DefaultDialTimeout bounds opening a stream to a member, unless
// FetchOptions.DialTimeout says otherwise.
const DefaultDialTimeout = 15 * time.Second

// FetchOptions tune the fetcher. Zero fields take the defaults shown.
type FetchOptions struct {
	Window       int           // requests in flight per source (8)
	MaxInFlight  int64         // chunk bytes in flight across sources (64 MiB)
	EndGame      int           // chunks left when the end game starts (4)
	MaxStrikes   int           // corrupt chunks before a source is dropped (3)
	StoreWorkers int           // chunks verified and stored in parallel (4)
	FindTimeout  time.Duration // bound on a DHT provider lookup (10 s)
	HaveRefresh  time.Duration // period of HaveRequests to partial sources (1 s)
	StallTimeout time.Duration // how long to wait for a missing chunk to appear (10 s)
	DialTimeout  time.Duration // bound on opening a stream (15 s)
	ReplyTimeout time.Duration // bound on the wait for the next response (2 min)
}

func (o FetchOptions) withDefaults() FetchOptions {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	dur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.Window, 8)
	def(&o.EndGame, 4)
	def(&o.MaxStrikes, 3)
	def(&o.StoreWorkers, 4)
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 64 << 20
	}
	dur(&o.FindTimeout, 10*time.Second)
	dur(&o.HaveRefresh, time.Second)
	dur(&o.StallTimeout, 10*time.Second)
	dur(&o.DialTimeout, DefaultDialTimeout)
	dur(&o.ReplyTimeout, 2*time.Minute)
	return o
}

// FetchProgress is the state of a fetch, handed to the progress callback
// after each chunk stored.
type FetchProgress struct {
	// Bytes of the content held locally so far (Resumed included); Total
	// when complete.
	Bytes int64
	// Total is the content's size.
	Total int64
	// Resumed is the bytes already held when the fetch started.
	Resumed int64
	// Sources maps a peer ID (string form) to the chunk payload bytes
	// received from it and stored.
	Sources map[string]int64
	// Duplicates is the chunk payload received for chunks already stored
	// (the end game's cost).
	Duplicates int64
}

// fetch is the state of one Fetch call.
type fetch struct {
	x        *Exchange
	root     cid.Cid
	pid      protocol.ID
	opts     FetchOptions
	progress func(FetchProgress)
	// sink takes each verified chunk instead of the store (FetchInto).
	sink     func(id cid.Cid, data []byte) error
	progMu   sync.Mutex
	reported uint64 // sequence number of the last progress reported, under progMu
	work     chan delivery
	changed  chan struct{}
	sessions sync.WaitGroup

	mu          sync.Mutex
	wants       []*want
	order       []*want
	head        int
	resort      bool
	left        int
	inflight    int64
	sources     map[peer.ID]*source
	prog        FetchProgress
	fatal       error
	finished    bool
	liars       int
	dupRequests int
	nchunks     int
	seq         uint64
}

// Fetch fetches the content root (a manifest CID) into the local store: the
// manifest from the first holder that has it (refused unless it hashes to
// root), then the chunks not yet held, from every holder at once. It
// resumes: chunks already stored are not fetched. progress, if not nil, is
// called after each chunk stored. Fetch does not announce the content; call
// Provide after it.
func (x *Exchange) Fetch(ctx context.Context, root cid.Cid, progress func(FetchProgress)) error {
	if err := isManifest(root); err != nil {
		return fmt.Errorf("fetching: %w", err)
	}
	pid := x.Protocol()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var cands <-chan peer.ID
	var first []peer.ID
	m, err := x.store.Manifest(ctx, root)
	if errors.Is(err, chunk.ErrNotFound) {
		if pid == "" {
			return fmt.Errorf("fetching %s: %w", root, ErrNoSwarm)
		}
		cands = x.holders(ctx, root)
		var from peer.ID
		m, from, err = x.fetchManifest(ctx, pid, root, cands, true)
		if err != nil {
			return err
		}
		first = []peer.ID{from}
	} else if err != nil {
		return fmt.Errorf("fetching %s: %w", root, err)
	}
	missing, err := x.store.Missing(ctx, root)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", root, err)
	}
	if done, err := x.fetchCodedFirst(ctx, pid, root, m, missing, first, cands, progress, nil); done {
		return err
	} else if m.Coded() {
		first, cands = nil, nil // whole copies only: fetch their chunks
	}
	f := x.newFetch(root, pid, m, missing, progress)
	f.mu.Lock()
	p, seq := f.snapshot()
	f.mu.Unlock()
	f.report(p, seq)
	if f.left == 0 {
		return nil
	}
	if pid == "" {
		return fmt.Errorf("fetching %s: %w", root, ErrNoSwarm)
	}
	if cands == nil {
		cands = x.holders(ctx, root)
	}
	if err := f.run(ctx, first, cands); err != nil {
		// A cancelled fetch may see its sources end first; say why.
		if ctx.Err() != nil {
			return fmt.Errorf("fetching %s: %w", root, ctx.Err())
		}
		return err
	}
	return nil
}

func (x *Exchange) newFetch(root cid.Cid, pid protocol.ID, m *chunk.Manifest, missing []chunk.ChunkRef, progress func(FetchProgress)) *fetch {
	f := &fetch{
		x: x, root: root, pid: pid, opts: x.fetchOpts, progress: progress,
		changed: make(chan struct{}, 1), sources: map[peer.ID]*source{},
	}
	f.work = make(chan delivery)
	f.nchunks = len(m.Chunks)
	absent := make(map[string]bool, len(missing))
	for _, r := range missing {
		absent[r.CID.KeyString()] = true
	}
	byKey := map[string]*want{}
	var missingBytes int64
	for i, r := range m.Chunks {
		k := r.CID.KeyString()
		if !absent[k] {
			continue
		}
		missingBytes += int64(r.Length)
		if w := byKey[k]; w != nil {
			w.idx = append(w.idx, i)
			continue
		}
		w := &want{id: r.CID, size: int64(r.Length), idx: []int{i}}
		byKey[k] = w
		f.wants = append(f.wants, w)
	}
	f.left = len(f.wants)
	f.order = append([]*want(nil), f.wants...)
	f.prog = FetchProgress{Total: m.Size, Resumed: m.Size - missingBytes, Bytes: m.Size - missingBytes, Sources: map[string]int64{}}
	return f
}

// run is the coordinator: it starts a session for every candidate, and
// ends when every chunk is stored, when no source can supply what is left,
// on a storage error or when ctx ends.
func (f *fetch) run(ctx context.Context, first []peer.ID, cands <-chan peer.ID) error {
	var workers sync.WaitGroup
	for range f.opts.StoreWorkers {
		workers.Go(func() { f.storeLoop(ctx) })
	}
	for _, p := range first {
		f.addSource(ctx, p, false)
	}
	tick := time.NewTicker(f.opts.HaveRefresh)
	defer tick.Stop()
	var stalled time.Time
	var err error
	for err == nil {
		select {
		case p, ok := <-cands:
			if !ok {
				cands = nil
				break
			}
			f.addSource(ctx, p, false)
		case <-f.changed:
		case <-tick.C:
			f.retryAbsent(ctx)
		case <-ctx.Done():
			err = fmt.Errorf("fetching %s: %w", f.root, ctx.Err())
		}
		f.mu.Lock()
		switch {
		case f.fatal != nil:
			err = fmt.Errorf("fetching %s: %w", f.root, f.fatal)
		case f.left == 0:
			f.mu.Unlock()
			f.finish()
			workers.Wait()
			f.x.log.Info("fetched", "root", f.root, "bytes", f.prog.Total, "resumed", f.prog.Resumed,
				"sources", len(f.prog.Sources), "duplicates", f.prog.Duplicates)
			return nil
		case err == nil:
			err = f.stallCheck(cands == nil, &stalled)
		}
		f.mu.Unlock()
	}
	f.finish()
	workers.Wait()
	return err
}

// stallCheck fails the fetch when chunks are left that no live source
// holds and nothing is in flight: at once when every live source has a
// complete have-set, else after StallTimeout of re-asking. discovered says
// discovery has ended: no new source can come but by asking again one that
// was absent, which is not progress (source.again).
func (f *fetch) stallCheck(discovered bool, since *time.Time) error {
	live, final, unknown := 0, true, false
	for _, s := range f.sources {
		if s.dead {
			continue
		}
		live++
		unknown = unknown || (!s.known() && !s.again)
		final = final && s.complete
	}
	if !discovered || unknown {
		*since = time.Time{}
		return nil
	}
	if live == 0 {
		return fmt.Errorf("fetching %s: %d of %d chunks left and no source left of %d (%d dropped for lying): %w",
			f.root, f.left, len(f.wants), len(f.sources), f.liars, ErrNoHolder)
	}
	if f.inflight > 0 {
		*since = time.Time{}
		return nil
	}
	if f.resort {
		f.recount()
	}
	var orphan *want
	n := 0
	for _, w := range f.order {
		if !w.done && w.holders == 0 {
			n++
			if orphan == nil {
				orphan = w
			}
		}
	}
	if n == 0 {
		*since = time.Time{}
		return nil
	}
	if since.IsZero() {
		*since = time.Now()
	}
	if final || time.Since(*since) > f.opts.StallTimeout {
		return fmt.Errorf("fetching %s: %d of %d chunks (first: chunk %d, %s) held by none of %d live sources: %w",
			f.root, n, len(f.wants), orphan.idx[0], orphan.id, live, ErrNoHolder)
	}
	return nil
}

// finish ends every session: gracefully when it owes nothing, by reset
// otherwise (a duplicate still in flight is not waited for, a dial in
// progress is abandoned), then waits for them and stops the store workers.
func (f *fetch) finish() {
	f.mu.Lock()
	f.finished = true
	for _, s := range f.sources {
		if len(s.pending) > 0 || !s.known() || f.fatal != nil || f.left > 0 {
			s.cancel()
		}
	}
	f.wakeAll()
	f.mu.Unlock()
	f.sessions.Wait()
	close(f.work)
}

// retryAbsent starts a new session with each connected source that said
// it does not hold the manifest at least absentRetry ago: a member being
// placed at the same time as this one (without the Ready barrier, e.g. one
// replacing a holder that failed) gets the manifest soon after, and the
// uploader's super-seeding gate sends this fetch to it for the chunks it
// was given.
func (f *fetch) retryAbsent(ctx context.Context) {
	f.mu.Lock()
	var again []peer.ID
	for p, s := range f.sources {
		if s.dead && s.absent && time.Since(s.ended) >= f.absentRetry() &&
			f.x.host.Network().Connectedness(p) == network.Connected {
			delete(f.sources, p)
			again = append(again, p)
		}
	}
	f.mu.Unlock()
	for _, p := range again {
		f.addSource(ctx, p, true)
	}
}

// absentRetry is how long after a source said it does not hold the
// manifest it is asked again.
func (f *fetch) absentRetry() time.Duration { return 2 * f.opts.HaveRefresh }

// addSource starts a session with p unless it already has one; again says
// p said before that it does not hold the manifest.
func (f *fetch) addSource(ctx context.Context, p peer.ID, again bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sources[p]; ok || f.finished {
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &source{id: p, pending: map[uint64]*want{}, wake: make(chan struct{}, 1), cancel: cancel, again: again}
	f.sources[p] = s
	f.sessions.Go(func() { f.session(sctx, s) })
}

// fetchCodedFirst runs the coded getter (fetch_coded.go) when m is a coded
// content with chunks missing and a swarm to ask, with cands, or the
// holders of root when nil; decoded chunks go to sink, or to the store
// when sink is nil. done says the coded getter ran to its end, err being
// its result. When no candidate holds a shard set it is not done: whole
// copies serve the chunks, through the replicated fetch with candidates
// of its own.
func (x *Exchange) fetchCodedFirst(ctx context.Context, pid protocol.ID, root cid.Cid, m *chunk.Manifest, missing []chunk.ChunkRef,
	first []peer.ID, cands <-chan peer.ID, progress func(FetchProgress), sink func(cid.Cid, []byte) error) (done bool, err error) {
	if !m.Coded() || len(missing) == 0 || pid == "" {
		return false, nil
	}
	if cands == nil {
		cands = x.holders(ctx, root)
	}
	err = x.fetchCoded(ctx, pid, root, m, missing, first, cands, progress, sink)
	if errors.Is(err, errNoShards) {
		return false, nil
	}
	return true, err
}
