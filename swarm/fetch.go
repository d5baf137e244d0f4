package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
)

// This file implements the multi-source fetcher (docs/EXCHANGE.md
// "Fetching"): the coordinator and one session per source.

// ErrNoHolder is returned by Fetch when no reachable source holds the
// manifest or some chunk of it; the message says which and how many.
var ErrNoHolder = errors.New("swarm: no holder")

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
	dur(&o.DialTimeout, 15*time.Second)
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
		m, from, err = x.fetchManifest(ctx, pid, root, cands)
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

// fetchManifest asks the candidates one after another for the manifest and
// returns the first one that hashes to root, with the peer that sent it.
func (x *Exchange) fetchManifest(ctx context.Context, pid protocol.ID, root cid.Cid, cands <-chan peer.ID) (*chunk.Manifest, peer.ID, error) {
	asked, lied := 0, 0
	for p := range cands {
		asked++
		m, err := x.askManifest(ctx, pid, p, root)
		if err == nil {
			if _, err = x.store.PutManifest(ctx, m); err != nil {
				return nil, "", fmt.Errorf("fetching %s: %w", root, err)
			}
			return m, p, nil
		}
		if errors.Is(err, chunk.ErrBadManifest) {
			lied++
			x.log.Warn("peer sent a manifest that does not match its CID", "peer", p, "root", root, "err", err)
		} else {
			x.log.Debug("manifest not fetched", "peer", p, "root", root, "err", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("fetching %s: %w", root, err)
	}
	return nil, "", fmt.Errorf("fetching %s: manifest: none of %d candidates served it (%d lied): %w", root, asked, lied, ErrNoHolder)
}

// askManifest fetches and checks the manifest root from p on a stream of
// its own. A manifest whose bytes do not hash to root wraps
// chunk.ErrBadManifest.
func (x *Exchange) askManifest(ctx context.Context, pid protocol.ID, p peer.ID, root cid.Cid) (*chunk.Manifest, error) {
	dctx, cancel := context.WithTimeout(ctx, x.fetchOpts.DialTimeout)
	defer cancel()
	s, err := x.host.NewStream(dctx, p, pid)
	if err != nil {
		return nil, fmt.Errorf("opening exchange stream to %s: %w", p, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	_ = s.SetDeadline(time.Now().Add(x.fetchOpts.ReplyTimeout))
	c := proto.NewCodec(s)
	if err := send(c, &proto.ManifestRequest{ID: 1, Root: root}); err != nil {
		s.Reset()
		return nil, err
	}
	msg, err := c.Recv()
	if err != nil {
		s.Reset()
		return nil, fmt.Errorf("receiving manifest from %s: %w", p, err)
	}
	switch msg := msg.(type) {
	case *proto.ManifestResponse:
		_ = send(c, &proto.Bye{})
		s.Close()
		if msg.ID != 1 || !msg.Root.Equals(root) {
			return nil, fmt.Errorf("manifest from %s answers another request: %w", p, chunk.ErrBadManifest)
		}
		if got := chunk.ManifestCID(msg.Data); !got.Equals(root) {
			return nil, fmt.Errorf("manifest from %s hashes to %s: %w", p, got, chunk.ErrBadManifest)
		}
		m, err := chunk.DecodeManifest(msg.Data)
		if err != nil {
			return nil, fmt.Errorf("manifest from %s: %w", p, err)
		}
		return m, nil
	case *proto.ErrorResponse:
		s.Close()
		return nil, fmt.Errorf("asking %s for manifest: %w", p, msg)
	default:
		s.Reset()
		return nil, fmt.Errorf("asking %s for manifest: unexpected %s", p, msg.Type())
	}
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
		f.addSource(ctx, p)
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
			f.addSource(ctx, p)
		case <-f.changed:
		case <-tick.C:
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
// complete have-set, else after StallTimeout of re-asking. searching says
// whether discovery may still add sources.
func (f *fetch) stallCheck(discovered bool, since *time.Time) error {
	live, final, unknown := 0, true, false
	for _, s := range f.sources {
		if s.dead {
			continue
		}
		live++
		unknown = unknown || !s.known()
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

// addSource starts a session with p unless it already has one.
func (f *fetch) addSource(ctx context.Context, p peer.ID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sources[p]; ok || f.finished {
		return
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &source{id: p, pending: map[uint64]*want{}, wake: make(chan struct{}, 1), cancel: cancel}
	f.sources[p] = s
	f.sessions.Go(func() { f.session(sctx, s) })
}

// session fetches from one source over one stream until the fetch ends or
// the stream fails; a failure gives the source's pending chunks back.
func (f *fetch) session(ctx context.Context, s *source) {
	err := f.runSession(ctx, s)
	f.mu.Lock()
	if err != nil && !f.finished {
		f.x.log.Debug("source lost", "peer", s.id, "root", f.root, "err", err)
	}
	f.kill(s)
	f.wakeAll()
	f.mu.Unlock()
}

func (f *fetch) runSession(ctx context.Context, s *source) error {
	dctx, cancel := context.WithTimeout(ctx, f.opts.DialTimeout)
	st, err := f.x.host.NewStream(dctx, s.id, f.pid)
	cancel()
	if err != nil {
		return fmt.Errorf("opening exchange stream to %s: %w", s.id, err)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	c := proto.NewCodec(st)
	rerr := make(chan error, 1)
	go func() { rerr <- f.readLoop(ctx, s, st, c) }()
	err = f.writeLoop(ctx, s, st, c, rerr)
	if err == nil && stop() {
		// Finished owing nothing: Bye, then wait for the server's close.
		if err = send(c, &proto.Bye{}); err == nil {
			err = st.CloseWrite()
		}
		if err == nil {
			err = <-rerr
		}
		if err == nil {
			return st.Close()
		}
	}
	stop()
	st.Reset()
	if err == nil {
		err = <-rerr
	} else {
		<-rerr
	}
	return err
}

// writeLoop sends requests to s as its window frees up, and a HaveRequest
// at the start and whenever a partial source has nothing left to offer.
// It returns nil when the fetch is finished.
func (f *fetch) writeLoop(ctx context.Context, s *source, st network.Stream, c *proto.Codec, rerr chan error) error {
	f.mu.Lock()
	s.haveID = 1 << 63
	f.mu.Unlock()
	if err := send(c, &proto.HaveRequest{ID: 1 << 63, Root: f.root}); err != nil {
		return err
	}
	refresh := time.NewTimer(f.opts.HaveRefresh)
	defer refresh.Stop()
	for {
		var reqs []proto.Msg
		f.mu.Lock()
		if f.finished {
			f.mu.Unlock()
			return nil
		}
		if s.known() && !s.dead {
			reqs = f.assign(s)
			if len(reqs) == 0 && s.busy == 0 && !s.complete && s.haveID == 0 &&
				time.Since(s.lastHave) >= f.opts.HaveRefresh {
				s.nextID++
				s.haveID = s.nextID
				reqs = append(reqs, &proto.HaveRequest{ID: s.nextID, Root: f.root})
			}
		}
		f.mu.Unlock()
		if len(reqs) > 0 {
			_ = st.SetWriteDeadline(time.Now().Add(f.opts.ReplyTimeout))
			for _, r := range reqs {
				if err := c.Send(r); err != nil {
					return fmt.Errorf("sending %s to %s: %w", r.Type(), s.id, err)
				}
			}
			if err := c.Flush(); err != nil {
				return fmt.Errorf("sending requests to %s: %w", s.id, err)
			}
		}
		refresh.Reset(f.opts.HaveRefresh)
		select {
		case <-s.wake:
		case <-refresh.C:
		case err := <-rerr:
			rerr <- err // runSession waits for it too
			if err == nil {
				err = fmt.Errorf("%s closed the stream", s.id)
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readLoop receives the responses of s: have-sets, chunks (handed to the
// store workers after the download limiter) and errors. It returns nil at
// a clean end of stream after the fetch finished.
func (f *fetch) readLoop(ctx context.Context, s *source, st network.Stream, c *proto.Codec) error {
	for {
		_ = st.SetReadDeadline(time.Now().Add(f.opts.ReplyTimeout))
		msg, err := c.Recv()
		if errors.Is(err, io.EOF) {
			f.mu.Lock()
			done := f.finished
			f.mu.Unlock()
			if done {
				return nil
			}
			return fmt.Errorf("%s closed the stream", s.id)
		}
		if err != nil {
			return fmt.Errorf("receiving from %s: %w", s.id, err)
		}
		switch m := msg.(type) {
		case *proto.HaveResponse:
			if err := f.onHave(s, m); err != nil {
				return err
			}
		case *proto.BlockResponse:
			f.mu.Lock()
			w := f.take(s, m.ID)
			poke(s.wake) // its window slot is free
			f.mu.Unlock()
			if w == nil || !w.id.Equals(m.CID) {
				return fmt.Errorf("%s answered request %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
			}
			f.x.received.Add(int64(len(m.Data)))
			d := delivery{s: s, w: w, data: m.Data}
			if err := wait(ctx, f.x.bw.down, len(m.Data)); err != nil {
				f.giveBack(d)
				return err
			}
			select {
			case f.work <- d:
			case <-ctx.Done():
				f.giveBack(d)
				return ctx.Err()
			}
		case *proto.ErrorResponse:
			if err := f.onError(s, m); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s sent %s, not a response: %w", s.id, msg.Type(), proto.ErrInvalid)
		}
	}
}

// giveBack releases a received chunk that will not be stored.
func (f *fetch) giveBack(d delivery) {
	f.mu.Lock()
	f.release(d.s, d.w, true)
	f.mu.Unlock()
}

// onHave records a source's have-set.
func (f *fetch) onHave(s *source, m *proto.HaveResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ID != s.haveID || !m.Root.Equals(f.root) {
		return fmt.Errorf("%s answered HaveRequest %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
	}
	if n := f.nchunks; int(m.NumChunks) != n {
		return fmt.Errorf("%s says %s has %d chunks, the manifest lists %d: %w", s.id, f.root, m.NumChunks, n, proto.ErrInvalid)
	}
	s.have, s.complete, s.haveID, s.lastHave = m.Have, m.Complete, 0, time.Now()
	f.resort = true
	f.wakeAll()
	return nil
}

// onError handles an ErrorResponse: to the HaveRequest it means the source
// does not hold the manifest (the session ends); to a BlockRequest, that
// it lost the chunk (requeued elsewhere).
func (f *fetch) onError(s *source, m *proto.ErrorResponse) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if m.ID == s.haveID && m.ID != 0 {
		return fmt.Errorf("%s does not serve %s: %w", s.id, f.root, m)
	}
	w := f.take(s, m.ID)
	if w == nil {
		return fmt.Errorf("%s answered request %d, which is not in flight: %w", s.id, m.ID, proto.ErrInvalid)
	}
	f.release(s, w, true)
	f.notHeld(s, w)
	f.wakeAll()
	return nil
}
