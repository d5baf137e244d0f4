package exchange

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
)

// This file holds the fetcher's scheduling state and decisions
// (docs/EXCHANGE.md "Scheduling", "End game", "Lying peers"). Every method
// whose name does not say otherwise runs with fetch.mu held.

// want is one distinct chunk still to fetch.
type want struct {
	id   cid.Cid
	size int64
	idx  []int // its positions in the manifest (a chunk may repeat)

	holders int       // live sources whose have-set lists it
	reqs    int       // copies requested and not yet stored or given up (0, 1, or 2 in the end game)
	got     int       // copies received and on their way to the store
	since   time.Time // when the oldest outstanding request was sent
	storing bool      // a worker is storing a copy
	done    bool      // stored
}

// source is one holder being fetched from, over one stream.
type source struct {
	id       peer.ID
	have     proto.Bitfield // nil until the first HaveResponse
	complete bool
	strikes  int
	dead     bool
	pending  map[uint64]*want // requests sent, by request ID
	busy     int              // pending requests plus chunks being stored
	nextID   uint64
	haveID   uint64 // ID of the outstanding HaveRequest, 0 if none
	lastHave time.Time
	bytes    int64 // payload stored from this source
	answered int   // chunks it delivered (the window opens with them)
	// suspect lists the chunks s sent that did not match their CID: each
	// is asked of s again with Verify set, so that s checks (and
	// quarantines) its copy; it answers NotFound or good bytes.
	suspect []*want
	// absent says the source answered that it does not hold the manifest
	// (yet: a new holder being placed at the same time gets it soon); ended
	// is when its session ended. retryAbsent asks it again.
	absent bool
	// again says the session asks a source that said it was absent: its
	// unknown have-set does not hold off the stall timeout, or a fetch
	// that retries forever would never stall out.
	again  bool
	ended  time.Time
	wake   chan struct{}
	cancel context.CancelFunc
}

func (s *source) known() bool { return s.have != nil }

// has reports whether the source's have-set lists w.
func (s *source) has(w *want) bool {
	if s.have == nil {
		return false
	}
	if s.complete {
		return true
	}
	for _, i := range w.idx {
		if s.have.Has(i) {
			return true
		}
	}
	return false
}

// owes reports whether a request for w is outstanding at s.
func (s *source) owes(w *want) bool {
	for _, p := range s.pending {
		if p == w {
			return true
		}
	}
	return false
}

// startWindow is the window of a source that has delivered nothing yet.
const startWindow = 2

// window is the number of requests s may have in flight. It opens like a
// slow start: startWindow, one more for every chunk s delivered, up to the
// configured window; halved for each strike. Starting small spreads a
// content of few chunks over every source (the first source to answer
// would otherwise take a whole window, which can be all of it) and lets a
// fast source earn its share by delivering.
func (f *fetch) window(s *source) int {
	return max(1, min(f.opts.Window, startWindow+s.answered)>>s.strikes)
}

// recount recomputes how many live sources hold each chunk still wanted and
// the scheduling order: rarest first, then in file order; chunks no source
// holds go last.
func (f *fetch) recount() {
	f.resort = false
	order := f.order[:0]
	for _, w := range f.wants {
		if w.done {
			continue
		}
		w.holders = 0
		for _, s := range f.sources {
			if !s.dead && s.has(w) {
				w.holders++
			}
		}
		order = append(order, w)
	}
	slices.SortStableFunc(order, func(a, b *want) int {
		ha, hb := a.holders, b.holders
		if ha == 0 {
			ha = 1 << 30
		}
		if hb == 0 {
			hb = 1 << 30
		}
		return ha - hb
	})
	f.order, f.head = order, 0
}

// assign picks the next chunks for s to request, up to its window and the
// fetch's byte budget, and records them as requested.
func (f *fetch) assign(s *source) []proto.Msg {
	if f.resort {
		f.recount()
	}
	var reqs []proto.Msg
	for s.busy < f.window(s) && (s.busy == 0 || f.inflight < f.opts.MaxInFlight) {
		verify := false
		w := f.pickSuspect(s)
		if w != nil {
			verify = true
		} else if w = f.pickQueued(s); w == nil {
			w = f.pickEndGame(s)
		}
		if w == nil {
			break
		}
		s.nextID++
		s.pending[s.nextID] = w
		s.busy++
		if w.reqs == 0 {
			w.since = time.Now()
		} else {
			f.dupRequests++
		}
		w.reqs++
		f.inflight += w.size
		reqs = append(reqs, &proto.BlockRequest{ID: s.nextID, CID: w.id, Verify: verify})
	}
	return reqs
}

// pickSuspect returns the oldest chunk s sent corrupt, to be asked of s
// again with Verify set (the report that makes s check its copy), or nil.
// It is asked even when another source delivered it meanwhile: the answer
// is then a duplicate, and s has learned.
func (f *fetch) pickSuspect(s *source) *want {
	if len(s.suspect) == 0 {
		return nil
	}
	w := s.suspect[0]
	s.suspect = s.suspect[1:]
	return w
}

// pickQueued returns the first chunk in scheduling order that s holds and
// nobody is fetching.
func (f *fetch) pickQueued(s *source) *want {
	for i := f.head; i < len(f.order); i++ {
		w := f.order[i]
		if w.done && i == f.head {
			f.head++
			continue
		}
		if !w.done && w.reqs == 0 && s.has(w) {
			return w
		}
	}
	return nil
}

// pickEndGame returns, once no more than EndGame chunks are left, the chunk
// that has waited longest for a single other source and that s holds: s
// asks for it too, and whichever copy arrives first is stored.
func (f *fetch) pickEndGame(s *source) *want {
	if f.left > f.opts.EndGame {
		return nil
	}
	var best *want
	for i := f.head; i < len(f.order); i++ {
		w := f.order[i]
		if w.done || w.reqs != 1 || w.got > 0 || !s.has(w) || s.owes(w) {
			continue
		}
		if best == nil || w.since.Before(best.since) {
			best = w
		}
	}
	return best
}

// take removes the request id from s's pending set and returns its chunk,
// or nil if no such request is in flight. The answer frees its slot in s's
// window at once, so that s keeps sending while the chunk is verified and
// stored; its bytes stay counted in flight (the memory bound) until release.
func (f *fetch) take(s *source, id uint64) *want {
	w := s.pending[id]
	if w == nil {
		return nil
	}
	delete(s.pending, id)
	s.busy--
	s.answered++
	w.got++
	return w
}

// release frees the bytes of one request of s that was taken (received),
// or the slot and the bytes of one that is given up.
func (f *fetch) release(s *source, w *want, taken bool) {
	if !taken {
		s.busy--
	}
	w.reqs--
	f.inflight -= w.size
	if taken {
		w.got--
	}
}

// notHeld records that s answered NotFound for w after all.
func (f *fetch) notHeld(s *source, w *want) {
	if s.have != nil {
		s.complete = false
		for _, i := range w.idx {
			s.have[i>>3] &^= 1 << (i & 7)
		}
	}
	f.resort = true
}

// strike counts a chunk from s that did not match its CID; after MaxStrikes
// the source is dropped for this fetch.
func (f *fetch) strike(s *source, w *want) {
	s.strikes++
	f.x.log.Warn("peer sent a chunk that does not match its CID", "peer", s.id, "cid", w.id, "strikes", s.strikes)
	s.suspect = append(s.suspect, w)
	if s.strikes >= f.opts.MaxStrikes && !s.dead {
		f.x.log.Warn("dropping lying peer for this fetch", "peer", s.id, "root", f.root)
		f.liars++
		f.kill(s)
	}
}

// kill marks s dead, gives its outstanding requests back to the queue and
// stops its stream.
func (f *fetch) kill(s *source) {
	if !s.dead {
		s.dead = true
		f.resort = true
	}
	for id, w := range s.pending {
		delete(s.pending, id)
		f.release(s, w, false)
	}
	s.cancel()
}

// delivery is one chunk received, on its way to the store.
type delivery struct {
	s    *source
	w    *want
	data []byte
}

// storeBatch is the most received chunks one store worker verifies and
// stores together (one index commit for all).
const storeBatch = 8

// storeLoop verifies and stores received chunks until work is closed,
// taking whatever else is already waiting along with each one.
func (f *fetch) storeLoop(ctx context.Context) {
	for d := range f.work {
		batch := []delivery{d}
	drain:
		for len(batch) < storeBatch {
			select {
			case d, ok := <-f.work:
				if !ok {
					break drain
				}
				batch = append(batch, d)
			default:
				break drain
			}
		}
		f.deliver(ctx, batch)
	}
}

// deliver stores received chunks (PutChunks verifies them) and accounts for
// each: progress, duplicates, strikes. It takes fetch.mu itself.
func (f *fetch) deliver(ctx context.Context, batch []delivery) {
	dup := make([]bool, len(batch))
	f.mu.Lock()
	for i, d := range batch {
		dup[i] = d.w.done || d.w.storing
		if !dup[i] {
			d.w.storing = true
		}
	}
	f.mu.Unlock()

	errs := make([]error, len(batch))
	var items []chunk.ChunkData
	var stored []int
	for i, d := range batch {
		if dup[i] {
			errs[i] = chunk.VerifyChunk(d.w.id, d.data)
			continue
		}
		items = append(items, chunk.ChunkData{CID: d.w.id, Data: d.data})
		stored = append(stored, i)
	}
	if len(items) > 0 {
		for j, err := range f.putChunks(ctx, items) {
			errs[stored[j]] = err
		}
	}

	f.mu.Lock()
	newBytes := false
	for i, d := range batch {
		f.account(ctx, d, dup[i], errs[i])
		newBytes = newBytes || (errs[i] == nil && !dup[i])
	}
	p, seq := f.snapshot()
	f.wakeAll()
	f.mu.Unlock()
	if newBytes {
		f.report(p, seq)
	}
}

// account records the outcome of one delivered chunk. Call with f.mu held.
func (f *fetch) account(ctx context.Context, d delivery, dup bool, err error) {
	f.release(d.s, d.w, true)
	if !dup {
		d.w.storing = false
	}
	switch {
	case errors.Is(err, chunk.ErrCorrupt):
		f.strike(d.s, d.w)
	case err != nil:
		if f.fatal == nil && ctx.Err() == nil {
			f.fatal = err
		}
	case dup:
		f.prog.Duplicates += d.w.size
	default:
		d.w.done = true
		f.left--
		f.prog.Bytes += d.w.size * int64(len(d.w.idx))
		d.s.bytes += d.w.size
		f.prog.Sources[d.s.id.String()] = d.s.bytes
	}
}

// snapshot copies the progress for the callback, with its sequence number.
func (f *fetch) snapshot() (FetchProgress, uint64) {
	f.seq++
	p := f.prog
	p.Sources = make(map[string]int64, len(f.prog.Sources))
	for k, v := range f.prog.Sources {
		p.Sources[k] = v
	}
	return p, f.seq
}

// report hands p to the progress callback, one call at a time and never
// after a later snapshot (progress never goes backwards).
func (f *fetch) report(p FetchProgress, seq uint64) {
	if f.progress == nil {
		return
	}
	f.progMu.Lock()
	defer f.progMu.Unlock()
	if seq <= f.reported {
		return
	}
	f.reported = seq
	f.progress(p)
}

// wakeAll wakes every source's writer and the coordinator.
func (f *fetch) wakeAll() {
	for _, s := range f.sources {
		poke(s.wake)
	}
	poke(f.changed)
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
