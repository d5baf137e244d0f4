// Package activity keeps the long control operations in flight on a daemon
// (puts, with the seeding that follows, and gets) with their latest progress,
// so that the status, the web page and the metrics can show them.
//
// It sees only what the control API runs: the replication engine's own
// background copies (repair rounds, placements asked by other members) do not
// pass through here.
package activity

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// Tracker lists the operations in flight. The zero value is ready; it is
// safe for concurrent use.
type Tracker struct {
	mu   sync.Mutex
	next uint64
	ops  map[uint64]*client.Transfer
}

// Op is one tracked operation; call Update with its progress and End once.
type Op struct {
	t  *Tracker
	id uint64
}

// Begin records an operation of kind (put, get) on subject (the local file).
func (t *Tracker) Begin(kind, subject string) *Op {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ops == nil {
		t.ops = make(map[uint64]*client.Transfer)
	}
	t.next++
	t.ops[t.next] = &client.Transfer{Op: kind, Subject: subject, Started: time.Now().UTC().Format(time.RFC3339)}
	return &Op{t: t, id: t.next}
}

// Update records the operation's latest progress. A put's progress carries
// sources (the new holders) only once its seeding has begun, which is how
// its phase is told.
func (o *Op) Update(p client.Progress) {
	o.t.mu.Lock()
	defer o.t.mu.Unlock()
	tr, ok := o.t.ops[o.id]
	if !ok {
		return
	}
	tr.Bytes, tr.Total = p.Bytes, p.Total
	tr.Sources = maps.Clone(p.Sources)
	if tr.Op == "put" {
		tr.Phase = "storing"
		if p.Sources != nil {
			tr.Phase = "seeding"
		}
	}
}

// End removes the operation.
func (o *Op) End() {
	o.t.mu.Lock()
	defer o.t.mu.Unlock()
	delete(o.t.ops, o.id)
}

// Snapshot returns copies of the operations in flight, oldest first.
func (t *Tracker) Snapshot() []client.Transfer {
	t.mu.Lock()
	defer t.mu.Unlock()
	ids := slices.Sorted(maps.Keys(t.ops))
	out := make([]client.Transfer, 0, len(ids))
	for _, id := range ids {
		tr := *t.ops[id]
		tr.Sources = maps.Clone(tr.Sources)
		out = append(out, tr)
	}
	return out
}

// Count returns the number of operations of each kind in flight.
func (t *Tracker) Count() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int)
	for _, tr := range t.ops {
		out[tr.Op]++
	}
	return out
}
