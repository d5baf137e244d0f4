package replicate

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The placement queue holds at most its bound, one entry per content,
// gives the most urgent first (below copies_min, then fewest copies, then
// oldest), makes room for a more urgent content by dropping the least
// urgent, and refuses a content whose placement runs.
func TestPlaceQueueBoundAndUrgency(t *testing.T) {
	q := newPlaceQueue(3)
	mk := func(name string, l level, copies int) *job {
		return &job{root: testRoot(t, name), key: name, level: l, copies: copies, need: 1}
	}
	for _, j := range []*job{
		mk("target-2", belowTarget, 2),
		mk("target-1", belowTarget, 1),
		mk("target-2b", belowTarget, 2),
	} {
		if !q.push(j) {
			t.Fatalf("%s refused by a queue with room", j.key)
		}
	}
	if q.push(mk("target-2c", belowTarget, 2)) {
		t.Fatal("a full queue took a content no more urgent than those it holds")
	}
	if !q.push(mk("min-1", belowMin, 1)) {
		t.Fatal("a full queue refused a content below copies_min")
	}
	if !q.push(mk("target-1", belowTarget, 1)) { // again: updated in place
		t.Fatal("a queued content refused")
	}
	if n, _, _ := q.counts(); n != 3 {
		t.Fatalf("queue holds %d, bound 3", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var got []string
	var jobs []*job
	for range 3 {
		j, ok := q.pop(ctx)
		if !ok {
			t.Fatal("pop ended early")
		}
		got = append(got, j.key)
		jobs = append(jobs, j)
	}
	if want := "[min-1 target-1 target-2]"; fmt.Sprint(got) != want {
		t.Fatalf("order %v, want %s (target-2b, the least urgent, dropped)", got, want)
	}
	if q.push(mk("min-1", belowMin, 1)) {
		t.Fatal("a content whose placement runs was queued again")
	}
	if _, running, started := q.counts(); running != 3 || started != 3 {
		t.Fatalf("running %d started %d, want 3 and 3", running, started)
	}
	q.done(jobs[0])
	if !q.push(mk("min-1", belowMin, 1)) {
		t.Fatal("a content whose placement ended could not be queued again")
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	if _, ok := q.pop(short); !ok {
		t.Fatal("queued job not popped")
	}
	if _, ok := q.pop(short); ok {
		t.Fatal("pop on an empty queue returned a job")
	}
}

// A content no longer needing a placement (placed by another member since
// it was queued) is taken out of the queue; a running one is not touched.
func TestPlaceQueueCancel(t *testing.T) {
	q := newPlaceQueue(8)
	for _, k := range []string{"a", "b", "c"} {
		q.push(&job{root: testRoot(t, k), key: k, level: belowTarget, copies: 2, need: 1})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	run, ok := q.pop(ctx) // "a" runs
	if !ok || run.key != "a" {
		t.Fatalf("popped %v, want a", run)
	}
	q.cancel("a")
	q.cancel("b")
	q.cancel("missing")
	if queued, running, _ := q.counts(); queued != 1 || running != 1 {
		t.Fatalf("queued %d running %d, want 1 and 1", queued, running)
	}
	if j, ok := q.pop(ctx); !ok || j.key != "c" {
		t.Fatalf("popped %v, want c (b was cancelled)", j)
	}
}
