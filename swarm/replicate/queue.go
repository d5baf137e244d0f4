package replicate

import (
	"container/heap"
	"context"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The placement queue (docs/REPLICATION.md "Placement queue"): a repair
// round does not start placements, it queues them. The queue holds at most
// a bounded number of contents, one entry per content, most urgent first
// (below copies_min before below copies, fewer copies first, then oldest);
// a fixed number of workers run under Run take from it, so the placements
// running from a member at any moment are bounded whatever a round finds.
// A content dropped because the queue is full is found again by a later
// round.

// Defaults of the placement queue.
const (
	// DefaultPlacements is how many repair placements run at once.
	DefaultPlacements = 4
	// DefaultPlaceQueue is how many contents wait for a placement at most.
	DefaultPlaceQueue = 4096
)

// job is one queued placement.
type job struct {
	pl     policy
	root   cid.Cid
	key    string
	level  level
	copies int // copies counted when queued
	need   int
	skip   map[peer.ID]bool
	live   []peer.ID
	coded  *codedJob // a coded repair (coded_rebuild.go), else nil
	seq    uint64
	index  int // in the heap
}

// urgent reports whether a goes before b.
func urgent(a, b *job) bool {
	if a.level != b.level {
		return a.level > b.level // belowMin > belowTarget
	}
	if a.copies != b.copies {
		return a.copies < b.copies
	}
	return a.seq < b.seq
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return urgent(h[i], h[j]) }
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *jobHeap) Push(x any) {
	j := x.(*job)
	j.index = len(*h)
	*h = append(*h, j)
}
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return j
}

// placeQueue is the bounded priority queue of placements. It is safe for
// concurrent use.
type placeQueue struct {
	mu      sync.Mutex
	max     int
	seq     uint64
	h       jobHeap
	queued  map[string]*job
	running map[string]bool
	started uint64 // placements taken by a worker since start
	ready   chan struct{}
}

func newPlaceQueue(max int) *placeQueue {
	return &placeQueue{max: max, queued: map[string]*job{}, running: map[string]bool{}, ready: make(chan struct{}, 1)}
}

// push queues j, or updates the entry of its content. It reports whether
// j is queued: not when a placement of the content runs already, nor when
// the queue is full of contents at least as urgent.
func (q *placeQueue) push(j *job) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.running[j.key] {
		return false
	}
	if old, ok := q.queued[j.key]; ok {
		j.seq, j.index = old.seq, old.index
		q.h[j.index] = j
		q.queued[j.key] = j
		heap.Fix(&q.h, j.index)
		return true
	}
	q.seq++
	j.seq = q.seq
	if len(q.h) >= q.max {
		// Full: the least urgent entry makes way for a more urgent one.
		worst := 0
		for i := range q.h {
			if urgent(q.h[worst], q.h[i]) {
				worst = i
			}
		}
		if !urgent(j, q.h[worst]) {
			return false
		}
		w := heap.Remove(&q.h, worst).(*job)
		delete(q.queued, w.key)
	}
	heap.Push(&q.h, j)
	q.queued[j.key] = j
	poke(q.ready)
	return true
}

// cancel drops the queued placement of the content k, if any (not one
// that runs already).
func (q *placeQueue) cancel(k string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if j, ok := q.queued[k]; ok {
		heap.Remove(&q.h, j.index)
		delete(q.queued, k)
	}
}

// pop waits for the most urgent job and marks its content running; call
// done with it when the placement ends. ok is false when ctx ended.
func (q *placeQueue) pop(ctx context.Context) (j *job, ok bool) {
	for {
		q.mu.Lock()
		if len(q.h) > 0 {
			j = heap.Pop(&q.h).(*job)
			delete(q.queued, j.key)
			q.running[j.key] = true
			q.started++
			more := len(q.h) > 0
			q.mu.Unlock()
			if more {
				poke(q.ready) // wake another worker
			}
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-q.ready:
		case <-ctx.Done():
			return nil, false
		}
	}
}

// done marks the placement of j ended.
func (q *placeQueue) done(j *job) {
	q.mu.Lock()
	delete(q.running, j.key)
	q.mu.Unlock()
}

// counts returns the jobs waiting, running, and taken since start.
func (q *placeQueue) counts() (queued, running int, started uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.h), len(q.running), q.started
}

// placeWorker runs queued placements one after another until ctx ends.
func (r *Replicator) placeWorker(ctx context.Context) {
	for {
		j, ok := r.queue.pop(ctx)
		if !ok {
			return
		}
		if j.coded != nil {
			r.repairCoded(ctx, j)
			r.queue.done(j)
			continue
		}
		r.log.Info("content below target; placing", "cid", j.root, "copies", j.copies,
			"target", j.pl.copies, "placing", j.need)
		start := time.Now()
		r.place(ctx, j.pl, j.root, j.need, j.skip, j.live, false, newPlacement())
		r.queue.done(j)
		r.log.Debug("placement ended", "cid", j.root, "took", time.Since(start))
	}
}
