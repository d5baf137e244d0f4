package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Rebuilding lost shard sets (docs/ERASURE.md "Repair"): the acting member
// places each lost set on a member holding no set of the content, as a put
// does (placeSets); the new holder pulls the set's shards from it, and it
// rebuilds them as they are asked for: per window of chunks it reads the
// sets it holds, fetches the others it needs from live holders (data sets
// first) until it has k shards of each chunk, and rebuilds the lost shards
// with Reed-Solomon, each verified against its CID. A window is fetched
// once for all the sets rebuilt at the same time, so rebuilding two lost
// sets costs the traffic of one.

// rebuildWindow is how many chunk bytes a rebuild fetches at once: the
// shards of about this much content (n/k × of it) are in memory per window.
const rebuildWindow = 16 << 20

// rebuildWindows is how many windows a rebuild keeps, so that new holders
// a little apart both find theirs.
const rebuildWindows = 2

// repairCoded runs a queued coded repair: it rebuilds and places the lost
// sets of j.coded.
func (r *Replicator) repairCoded(ctx context.Context, j *job) {
	cj := j.coded
	cx, ok := r.x.(codedExchange)
	if !ok {
		r.log.Warn("coded repair: the exchange cannot serve shards", "cid", j.root)
		return
	}
	enc, err := cj.m.Encode()
	if err != nil {
		r.log.Warn("coded repair: encoding the manifest", "cid", j.root, "err", err)
		return
	}
	cands := r.candidates(j.pl, j.root, j.skip, nil)
	if len(cands) == 0 {
		r.log.Warn("coded repair: no storage member without a shard set is connected", "cid", j.root, "sets", cj.sets)
		return
	}
	n := cj.m.Layout.K + cj.m.Layout.M
	var release func()
	if cj.local == uint32(1)<<n-1 {
		// The whole content is here: code the lost shards from it.
		release = cx.ServeCoded(cj.m)
	} else {
		b := newRebuilder(r, cx, j.root, cj)
		release = cx.ServeShards(b.ids(), b.shard)
	}
	defer release()
	sp := &setPlacement{holders: map[int]peer.ID{}, bytes: map[string]int64{}, changed: make(chan struct{}, 1)}
	start := time.Now()
	r.placeSets(ctx, j.root, enc, cj.sets, cands, sp)
	sp.mu.Lock()
	placed := len(sp.holders)
	for i, p := range sp.holders {
		r.log.Info("shard set rebuilt", "cid", j.root, "set", i, "peer", p)
	}
	sp.mu.Unlock()
	r.coded.mu.Lock()
	r.coded.repaired += uint64(placed)
	if st := r.coded.known[j.key]; st != nil {
		st.settled = false // counted anew at the next round
	}
	r.coded.mu.Unlock()
	r.log.Info("coded repair ended", "cid", j.root, "lost", len(cj.sets), "placed", placed, "took", time.Since(start))
}

// rebuilder serves the lost shards of one content during its repair.
type rebuilder struct {
	r    *Replicator
	cx   codedExchange
	root cid.Cid
	m    *chunk.Manifest
	k, n int
	// local lists the sets held here; remote the live holders of each
	// other set, in rendezvous order (whole copies are not asked: they
	// serve chunks, not shards).
	local  []int
	remote [][]peer.ID
	lost   []int
	pos    map[string]int // shard CID key of a lost set → its chunk

	mu   sync.Mutex
	bad  map[peer.ID]bool // sources that failed in this repair
	wins []*window        // most recent last
}

// window is the shards of chunks [from, to): shards[j-from][i] is shard i
// of chunk j, every one present once the window is rebuilt.
type window struct {
	from, to int
	shards   [][][]byte
}

func newRebuilder(r *Replicator, cx codedExchange, root cid.Cid, cj *codedJob) *rebuilder {
	k, n := cj.m.Layout.K, cj.m.Layout.K+cj.m.Layout.M
	b := &rebuilder{r: r, cx: cx, root: root, m: cj.m, k: k, n: n, lost: cj.sets,
		remote: make([][]peer.ID, n), pos: map[string]int{}, bad: map[peer.ID]bool{}}
	full := uint32(1)<<n - 1
	for i := range n {
		if cj.local&(1<<i) != 0 {
			b.local = append(b.local, i)
		}
	}
	for p, mask := range cj.holds {
		if mask == full {
			continue
		}
		for i := range n {
			if mask&(1<<i) != 0 {
				b.remote[i] = append(b.remote[i], p)
			}
		}
	}
	for i := range n {
		rank(root, b.remote[i])
	}
	for j, c := range cj.m.Chunks {
		for _, i := range cj.sets {
			if _, ok := b.pos[c.Shards[i].KeyString()]; !ok {
				b.pos[c.Shards[i].KeyString()] = j
			}
		}
	}
	return b
}

// ids lists the shard CIDs the rebuilder serves.
func (b *rebuilder) ids() []cid.Cid {
	var out []cid.Cid
	for _, i := range b.lost {
		s, _ := b.m.ShardSet(i)
		out = append(out, s...)
	}
	return out
}

// shard is the rebuilder's exchange.ShardSource.
func (b *rebuilder) shard(ctx context.Context, id cid.Cid) ([]byte, bool) {
	j, ok := b.pos[id.KeyString()]
	if !ok {
		return nil, false
	}
	i := -1
	for q, s := range b.m.Chunks[j].Shards {
		if s.Equals(id) {
			i = q
			break
		}
	}
	if i < 0 {
		return nil, false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var w *window
	for _, x := range b.wins {
		if x.from <= j && j < x.to {
			w = x
		}
	}
	if w == nil {
		var err error
		if w, err = b.load(ctx, j); err != nil {
			b.r.log.Warn("coded repair: rebuilding shards", "cid", b.root, "chunk", j, "err", err)
			return nil, false
		}
		b.wins = append(b.wins, w)
		if len(b.wins) > rebuildWindows {
			b.wins = b.wins[1:]
		}
	}
	return append([]byte(nil), w.shards[j-w.from][i]...), true
}

// load rebuilds the window of chunks starting at from.
func (b *rebuilder) load(ctx context.Context, from int) (*window, error) {
	chunks := b.m.Chunks
	to, size := from, 0
	for to < len(chunks) && (to == from || size < rebuildWindow) {
		size += int(chunks[to].Length)
		to++
	}
	w := &window{from: from, to: to, shards: make([][][]byte, to-from)}
	for q := range w.shards {
		w.shards[q] = make([][]byte, b.n)
	}
	have := make([]bool, b.n)
	got := 0
	for _, i := range b.local {
		if got == b.k {
			break
		}
		set, err := b.readLocal(ctx, from, to, i)
		if err != nil {
			b.r.log.Info("coded repair: a local shard set is unreadable", "cid", b.root, "set", i, "err", err)
			continue
		}
		for q := range set {
			w.shards[q][i] = set[q]
		}
		have[i], got = true, got+1
	}
	tried := map[int]map[peer.ID]bool{}
	for got < b.k {
		// The next sets to fetch, data sets first, each from its first
		// holder not tried yet.
		type pick struct {
			set int
			p   peer.ID
		}
		var picks []pick
		for i := 0; i < b.n && len(picks) < b.k-got; i++ {
			if have[i] {
				continue
			}
			for _, p := range b.remote[i] {
				if !b.bad[p] && !tried[i][p] {
					picks = append(picks, pick{i, p})
					break
				}
			}
		}
		if len(picks) == 0 {
			return nil, fmt.Errorf("rebuilding chunks %d–%d of %s: %d of the %d shard sets needed are reachable: %w",
				from, to-1, b.root, got, b.k, errNoSource)
		}
		sets := make([][][]byte, len(picks))
		errs := make([]error, len(picks))
		var wg sync.WaitGroup
		for q, pk := range picks {
			if tried[pk.set] == nil {
				tried[pk.set] = map[peer.ID]bool{}
			}
			tried[pk.set][pk.p] = true
			wg.Go(func() { sets[q], errs[q] = b.fetch(ctx, from, to, pk.set, pk.p) })
		}
		wg.Wait()
		for q, pk := range picks {
			if errs[q] != nil {
				b.r.log.Info("coded repair: fetching a shard set failed; trying another", "cid", b.root, "set", pk.set, "peer", pk.p, "err", errs[q])
				b.bad[pk.p] = true
				continue
			}
			for c := range sets[q] {
				w.shards[c][pk.set] = sets[q][c]
			}
			have[pk.set], got = true, got+1
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for q := range w.shards {
		// RebuildShards verifies every rebuilt shard against its CID.
		if err := chunk.RebuildShards(chunks[from+q], w.shards[q], b.k, b.n-b.k); err != nil {
			return nil, fmt.Errorf("rebuilding chunk %d of %s: %w", from+q, b.root, err)
		}
	}
	return w, nil
}

// errNoSource says a rebuild found fewer than k shard sets reachable.
var errNoSource = errors.New("too few shard sets reachable")

// readLocal reads shard set i of chunks [from, to) from the store.
func (b *rebuilder) readLocal(ctx context.Context, from, to, i int) ([][]byte, error) {
	out := make([][]byte, to-from)
	for j := from; j < to; j++ {
		data, err := b.r.store.GetChunk(ctx, b.m.Chunks[j].Shards[i])
		if err != nil {
			return nil, fmt.Errorf("reading shard %d of chunk %d: %w", i, j, err)
		}
		out[j-from] = data
	}
	return out, nil
}

// fetch fetches shard set i of chunks [from, to) from p, each verified.
func (b *rebuilder) fetch(ctx context.Context, from, to, i int, p peer.ID) ([][]byte, error) {
	ids := make([]cid.Cid, to-from)
	for j := from; j < to; j++ {
		ids[j-from] = b.m.Chunks[j].Shards[i]
	}
	out := make([][]byte, len(ids))
	err := b.cx.FetchShards(ctx, p, ids, func(q int, data []byte) error {
		out[q] = append([]byte(nil), data...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fetching shard set %d of %s from %s: %w", i, b.root, p, err)
	}
	return out, nil
}
