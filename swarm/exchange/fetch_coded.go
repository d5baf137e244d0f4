package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// The get of a coded content (docs/ERASURE.md "Get"): ask the holders which
// shard sets they hold, pull shard set i of the missing chunks from k
// holders at once (data sets first, so that nothing is decoded when they
// all answer), verify each shard, decode a chunk as soon as k of its shards
// are in, verify it against its CID and store it. A holder that fails or
// lies is replaced by the holder of another set for the chunks left.

// codedAhead bounds how far (in chunks) a fast set may run ahead of the
// first chunk not decoded yet, which bounds the shards kept in memory.
const codedAhead = 16

// codedStoreBatch is the most decoded chunks stored with one PutChunks:
// one index commit and one folder sync per batch rather than per chunk,
// as the replicated fetch stores (fetch_sched.go deliver).
const codedStoreBatch = 8

// errNoShards says that no holder answered with shard sets: the content is
// fetched chunk by chunk from holders of whole copies instead.
var errNoShards = errors.New("no holder of shard sets")

// codedFetch is the state of one coded get.
type codedFetch struct {
	x        *Exchange
	pid      protocol.ID
	m        *chunk.Manifest
	k, n     int
	progress func(FetchProgress)
	// sink, when set, takes each decoded chunk instead of the store
	// (FetchInto: a client's get writes it into the output file).
	sink func(id cid.Cid, data []byte) error

	mu      sync.Mutex
	wake    *sync.Cond
	slots   []*codedSlot // the distinct chunks missing, in manifest order
	low     int          // first slot not decoded
	left    int
	prog    FetchProgress
	failed  error // a decoded chunk that would not store: the fetch fails
	running int   // sessions running
	pending int   // chunks decoded and not stored yet

	decoded chan decodedChunk // to the storer
	stored  chan struct{}     // a batch was stored (cap 1)
	quit    chan struct{}     // closed when fetchCoded returns
}

// decodedChunk is a chunk decoded and verified, waiting to be stored.
type decodedChunk struct {
	ref  chunk.ChunkRef
	data []byte
}

type codedSlot struct {
	ref    chunk.ChunkRef
	shards [][]byte
	have   int
	done   bool
}

// fetchCoded fetches the missing chunks of the coded content m into the
// store, or into sink when it is not nil. first and cands are the
// candidate holders; errNoShards when none holds a set.
func (x *Exchange) fetchCoded(ctx context.Context, pid protocol.ID, root cid.Cid, m *chunk.Manifest, missing []chunk.ChunkRef, first []peer.ID, cands <-chan peer.ID, progress func(FetchProgress), sink func(cid.Cid, []byte) error) error {
	k, n := m.Layout.K, m.Layout.K+m.Layout.M
	sets, whole, late := x.findSets(ctx, pid, root, k, n, first, cands)
	defer func() {
		if late != nil { // not read to its end: let its sender finish
			go func(c <-chan shardAnswer) {
				for range c {
				}
			}(late)
		}
	}()
	found := 0
	for _, hs := range sets {
		if len(hs) > 0 {
			found++
		}
	}
	if found == 0 || (found < k && whole) {
		return errNoShards // a whole copy serves chunks as a replicated content
	}
	if found < k {
		return fmt.Errorf("fetching %s: %d of the %d shard sets needed have a reachable holder: %w", root, found, k, ErrNoHolder)
	}
	f := &codedFetch{x: x, pid: pid, m: m, k: k, n: n, progress: progress, sink: sink,
		decoded: make(chan decodedChunk, codedAhead+n), stored: make(chan struct{}, 1), quit: make(chan struct{})}
	f.wake = sync.NewCond(&f.mu)
	seen := map[string]bool{}
	var missingBytes int64
	for _, r := range missing {
		if key := r.CID.KeyString(); !seen[key] {
			seen[key] = true
			f.slots = append(f.slots, &codedSlot{ref: r, shards: make([][]byte, n)})
			missingBytes += int64(r.Length)
		}
	}
	f.left = len(f.slots)
	f.prog = FetchProgress{Total: m.Size, Bytes: m.Size - missingBytes, Resumed: m.Size - missingBytes, Sources: map[string]int64{}}
	if f.left == 0 {
		return nil
	}
	defer close(f.quit)
	go f.storer(ctx)
	// Sets in the order they are tried: data sets first, then parity; each
	// with its holders.
	type try struct {
		set int
		p   peer.ID
	}
	var queue []try
	for i := range n {
		for _, p := range sets[i] {
			queue = append(queue, try{i, p})
		}
	}
	ended := make(chan sessionEnd, n)
	active := map[int]bool{}
	liars := map[peer.ID]bool{}
	start := func() bool {
		for len(queue) > 0 {
			t := queue[0]
			queue = queue[1:]
			if active[t.set] || liars[t.p] {
				continue
			}
			active[t.set] = true
			f.mu.Lock()
			f.running++
			f.mu.Unlock()
			go func() {
				err := f.session(ctx, t.set, t.p)
				f.mu.Lock()
				f.running--
				f.wake.Broadcast()
				f.mu.Unlock()
				if errors.Is(err, ErrLiar) {
					err = fmt.Errorf("%w [%s]", err, t.p)
				}
				ended <- sessionEnd{set: t.set, p: t.p, err: err}
			}()
			return true
		}
		return false
	}
	for range k {
		if !start() {
			break
		}
	}
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		f.wake.Broadcast()
		f.mu.Unlock()
	})
	defer stop()
	var lastErr error
	for {
		f.mu.Lock()
		left, failed, running, pending := f.left, f.failed, f.running, f.pending
		f.mu.Unlock()
		if failed != nil {
			return failed
		}
		if left == 0 {
			return nil
		}
		if running == 0 && pending == 0 && len(queue) == 0 && late == nil {
			return fmt.Errorf("fetching %s: %d chunks left and no holder of a shard set left (last: %v): %w", root, left, lastErr, ErrNoHolder)
		}
		select {
		case e := <-ended:
			end := e
			active[end.set] = false
			if end.err != nil {
				lastErr = end.err
				x.log.Info("shard source lost; trying another set", "root", root, "set", end.set, "peer", end.p, "err", end.err)
				if errors.Is(end.err, ErrLiar) {
					liars[end.p] = true
				}
				start()
			}
		case a, ok := <-late:
			if !ok {
				late = nil
				continue
			}
			// A holder that answered after the fetch began: a failover
			// for its sets (data sets first), taken up if a set has no
			// session now.
			for i := range n {
				if a.mask&(1<<i) != 0 {
					queue = append(queue, try{i, a.p})
				}
			}
			if running < k {
				start()
			}
		case <-f.stored:
		case <-ctx.Done():
			return fmt.Errorf("fetching %s: %w", root, ctx.Err())
		}
	}
}

// sessionEnd is how one set's session ended.
type sessionEnd struct {
	set int
	p   peer.ID
	err error
}

// session pulls set i of the chunks not yet decoded from p.
func (f *codedFetch) session(ctx context.Context, i int, p peer.ID) error {
	f.mu.Lock()
	var idx []int
	var ids []cid.Cid
	for j := f.low; j < len(f.slots); j++ {
		if s := f.slots[j]; !s.done && s.shards[i] == nil {
			idx = append(idx, j)
			ids = append(ids, s.ref.Shards[i])
		}
	}
	f.mu.Unlock()
	return f.x.pullShards(ctx, f.pid, p, ids, func(q int, data []byte) error {
		j := idx[q]
		f.mu.Lock()
		for j >= f.low+codedAhead && f.failed == nil && ctx.Err() == nil {
			f.wake.Wait()
		}
		if f.failed != nil || ctx.Err() != nil {
			f.mu.Unlock()
			return fmt.Errorf("fetch ended: %w", context.Canceled)
		}
		s := f.slots[j]
		if s.done || s.shards[i] != nil {
			f.mu.Unlock()
			return nil
		}
		s.shards[i] = append([]byte(nil), data...)
		s.have++
		f.prog.Sources[p.String()] += int64(len(data))
		if s.have < f.k {
			f.mu.Unlock()
			return nil
		}
		s.done = true
		shards := s.shards
		s.shards = nil
		f.mu.Unlock()
		return f.decode(ctx, s.ref, shards)
	})
}

// decode rebuilds one chunk and hands it to the storer; a failure ends
// the fetch.
func (f *codedFetch) decode(ctx context.Context, ref chunk.ChunkRef, shards [][]byte) error {
	data, err := chunk.DecodeChunk(ref, shards, f.k, f.n-f.k)
	f.mu.Lock()
	if err != nil {
		if f.failed == nil {
			f.failed = fmt.Errorf("decoding chunk %s: %w", ref.CID, err)
		}
		f.wake.Broadcast()
		f.mu.Unlock()
		return err
	}
	f.pending++
	f.mu.Unlock()
	select {
	case f.decoded <- decodedChunk{ref: ref, data: data}:
		return nil
	case <-f.quit:
		return fmt.Errorf("fetch ended: %w", context.Canceled)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// storer stores decoded chunks in batches of up to codedStoreBatch until
// fetchCoded returns; a chunk that does not store fails the fetch.
func (f *codedFetch) storer(ctx context.Context) {
	for {
		var batch []decodedChunk
		select {
		case d := <-f.decoded:
			batch = append(batch, d)
		case <-f.quit:
			return
		}
	drain:
		for len(batch) < codedStoreBatch {
			select {
			case d := <-f.decoded:
				batch = append(batch, d)
			default:
				break drain
			}
		}
		errs := f.keep(ctx, batch)
		f.mu.Lock()
		f.pending -= len(batch)
		for i, d := range batch {
			if errs[i] != nil {
				if f.failed == nil {
					f.failed = fmt.Errorf("storing chunk %s: %w", d.ref.CID, errs[i])
				}
				continue
			}
			f.left--
			f.prog.Bytes += int64(d.ref.Length) * int64(f.count(d.ref.CID))
		}
		for f.low < len(f.slots) && f.slots[f.low].done {
			f.low++
		}
		f.wake.Broadcast()
		var p FetchProgress
		if f.progress != nil {
			p = f.prog
			p.Sources = make(map[string]int64, len(f.prog.Sources))
			for k, v := range f.prog.Sources {
				p.Sources[k] = v
			}
		}
		f.mu.Unlock()
		if f.progress != nil {
			f.progress(p)
		}
		select {
		case f.stored <- struct{}{}:
		default:
		}
	}
}

// keep stores a batch of decoded chunks, or hands each to the sink, and
// returns each one's error.
func (f *codedFetch) keep(ctx context.Context, batch []decodedChunk) []error {
	if f.sink != nil {
		errs := make([]error, len(batch))
		for i, d := range batch {
			errs[i] = f.sink(d.ref.CID, d.data)
		}
		return errs
	}
	items := make([]chunk.ChunkData, len(batch))
	for i, d := range batch {
		items[i] = chunk.ChunkData{CID: d.ref.CID, Data: d.data}
	}
	return f.x.store.PutChunks(ctx, items)
}

// count is how many times the manifest lists chunk id.
func (f *codedFetch) count(id cid.Cid) int {
	n := 0
	for _, c := range f.m.Chunks {
		if c.CID.Equals(id) {
			n++
		}
	}
	return n
}

// shardAnswer is what a candidate holds of a coded content: the sets in
// mask, and complete when it holds every chunk.
type shardAnswer struct {
	p        peer.ID
	mask     uint32
	complete bool
}

// findSets asks the candidates which shard sets they hold and returns the
// holders of each set, and whether some candidate holds every chunk. It
// returns as soon as every data set has a holder, or the candidates are
// exhausted, bounded by FindTimeout; the answers still to come (holders of
// parity sets, for the failover) arrive on late, which is closed when the
// last is in or FindTimeout has passed. The caller must read late until
// it is closed, or end ctx.
func (x *Exchange) findSets(ctx context.Context, pid protocol.ID, root cid.Cid, k, n int, first []peer.ID, cands <-chan peer.ID) (sets [][]peer.ID, whole bool, late <-chan shardAnswer) {
	ctx, cancel := context.WithTimeout(ctx, x.fetchOpts.FindTimeout)
	answers := make(chan shardAnswer)
	var wg sync.WaitGroup
	ask := func(p peer.ID) {
		wg.Go(func() {
			mask, complete, err := x.askShards(ctx, pid, p, root)
			if err != nil {
				x.log.Debug("asking for shard sets", "peer", p, "err", err)
			}
			select {
			case answers <- shardAnswer{p, mask, complete}:
			case <-ctx.Done():
			}
		})
	}
	for _, p := range first {
		ask(p)
	}
	asked := len(first)
	sets = make([][]peer.ID, n)
	dataCovered := func() bool {
		for i := range k {
			if len(sets[i]) == 0 {
				return false
			}
		}
		return true
	}
	got := 0
wait:
	for cands != nil || got < asked {
		if dataCovered() {
			break
		}
		select {
		case p, ok := <-cands:
			if !ok {
				cands = nil
				continue
			}
			ask(p)
			asked++
		case a := <-answers:
			got++
			whole = whole || a.complete
			for i := range n {
				if a.mask&(1<<i) != 0 {
					sets[i] = append(sets[i], a.p)
				}
			}
		case <-ctx.Done():
			break wait
		}
	}
	lateCh := make(chan shardAnswer)
	go func() {
		defer close(lateCh)
		defer cancel()
		for ; got < asked; got++ {
			select {
			case a := <-answers:
				select {
				case lateCh <- a:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return sets, whole, lateCh
}
