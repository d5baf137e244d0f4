package replicate

import (
	"container/heap"
	"slices"
	"sort"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/proto"
)

// Removal records (docs/REPLICATION.md "Removal"): `rm` makes a record
// signed with this member's peer key; every member keeps the newest record of each root (durably, bounded), deletes
// content whose newest record is a removal, refuses to place it, and hands
// its records to every member it is connected to. A later put makes a
// Restore record, which wins by its later time. A re-coding makes a
// removal that names the root's successor (recode.go): the same record,
// kept, spread and bounded the same way.

// MaxRemovals bounds the records kept; past it the oldest Restore records
// go first, then the oldest removals.
const MaxRemovals = 4096

// removals holds the newest record of each root and what was sent to whom.
// Its costs grow with what changed, not with the records held (at most
// MaxRemovals): every kept record gets the next sequence number, a member's
// progress is the number up to which it was sent everything, and the
// records to evict are kept in a heap.
type removals struct {
	mu      sync.Mutex
	recs    map[string]tomb
	seq     uint64             // the sequence number of the last record kept
	changes []change           // every record kept, in sequence order; stale ones skipped
	victims victimHeap         // eviction order; stale ones skipped
	sent    map[peer.ID]uint64 // peer → it was sent every record up to this number
}

// tomb is a record held and when it was kept.
type tomb struct {
	rec *proto.Removal
	seq uint64
}

// change is a record kept at seq; it is stale once its root's record is
// newer or gone.
type change struct {
	key string
	seq uint64
}

func newRemovals() *removals {
	return &removals{recs: map[string]tomb{}, sent: map[peer.ID]uint64{}}
}

func (t *removals) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.recs {
		if !r.rec.Restore {
			n++
		}
	}
	return n
}

// removed reports whether the newest record of root is a removal.
func (t *removals) removed(root cid.Cid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.recs[root.KeyString()]
	return ok && !r.rec.Restore
}

// successor returns the successor of root when its newest record is a
// removal that names one (root was re-coded, recode.go).
func (t *removals) successor(root cid.Cid) (cid.Cid, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r, ok := t.recs[root.KeyString()]
	if !ok || r.rec.Restore || !r.rec.Successor.Defined() {
		return cid.Undef, false
	}
	return r.rec.Successor, true
}

// put keeps rec if it is newer than the record held for its root, and
// reports whether it did. Past MaxRemovals the oldest Restore record goes,
// then the oldest removal.
func (t *removals) put(rec *proto.Removal) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := rec.Root.KeyString()
	if old, ok := t.recs[k]; ok && old.rec.Time >= rec.Time {
		return false
	}
	t.seq++
	t.recs[k] = tomb{rec: rec, seq: t.seq}
	t.changes = append(t.changes, change{key: k, seq: t.seq})
	heap.Push(&t.victims, victim{key: k, seq: t.seq, restore: rec.Restore, time: rec.Time})
	for len(t.recs) > MaxRemovals && t.victims.Len() > 0 {
		if v := heap.Pop(&t.victims).(victim); !t.stale(v.key, v.seq) {
			delete(t.recs, v.key)
		}
	}
	t.compact()
	return true
}

// compact drops the stale entries of changes and victims once they are
// more than twice the records held (so each put costs O(log n) amortized).
func (t *removals) compact() {
	limit := 2*len(t.recs) + 64
	if len(t.changes) > limit {
		t.changes = slices.DeleteFunc(t.changes, func(c change) bool { return t.stale(c.key, c.seq) })
	}
	if len(t.victims) > limit {
		t.victims = slices.DeleteFunc(t.victims, func(v victim) bool { return t.stale(v.key, v.seq) })
		heap.Init(&t.victims)
	}
}

// stale reports whether the entry of key kept at seq is no longer the
// record held for key.
func (t *removals) stale(key string, seq uint64) bool {
	cur, ok := t.recs[key]
	return !ok || cur.seq != seq
}

// unsent returns the records p has not been sent, and the sequence number
// to pass to markSent once p has them.
func (t *removals) unsent(p peer.ID) ([]*proto.Removal, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	from := t.sent[p]
	i := sort.Search(len(t.changes), func(i int) bool { return t.changes[i].seq > from })
	var out []*proto.Removal
	for _, c := range t.changes[i:] {
		if !t.stale(c.key, c.seq) {
			out = append(out, t.recs[c.key].rec)
		}
	}
	return out, t.seq
}

// markSent records that p has every record up to upto (from unsent).
func (t *removals) markSent(p peer.ID, upto uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if upto > t.sent[p] {
		t.sent[p] = upto
	}
}

// victim is an entry of the eviction heap.
type victim struct {
	key     string
	seq     uint64
	restore bool
	time    int64
}

// victimHeap orders records for eviction: Restore records before
// removals, older before newer.
type victimHeap []victim

func (h victimHeap) Len() int { return len(h) }
func (h victimHeap) Less(i, j int) bool {
	if h[i].restore != h[j].restore {
		return h[i].restore
	}
	return h[i].time < h[j].time
}
func (h victimHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *victimHeap) Push(x any)   { *h = append(*h, x.(victim)) }
func (h *victimHeap) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

// all returns the records held, oldest first.
func (t *removals) all() []*proto.Removal {
	t.mu.Lock()
	all := make([]*proto.Removal, 0, len(t.recs))
	for _, r := range t.recs {
		all = append(all, r.rec)
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b *proto.Removal) int { return int(min(max(a.Time-b.Time, -1), 1)) })
	return all
}
