package replicate

import (
	"slices"
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
type removals struct {
	mu   sync.Mutex
	recs map[string]*proto.Removal
	sent map[peer.ID]map[string]int64 // peer → root → time of the record it has
}

func newRemovals() *removals {
	return &removals{recs: map[string]*proto.Removal{}, sent: map[peer.ID]map[string]int64{}}
}

func (t *removals) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.recs {
		if !r.Restore {
			n++
		}
	}
	return n
}

// removed reports whether the newest record of root is a removal.
func (t *removals) removed(root cid.Cid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.recs[root.KeyString()]
	return r != nil && !r.Restore
}

// successor returns the successor of root when its newest record is a
// removal that names one (root was re-coded, recode.go).
func (t *removals) successor(root cid.Cid) (cid.Cid, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.recs[root.KeyString()]
	if r == nil || r.Restore || !r.Successor.Defined() {
		return cid.Undef, false
	}
	return r.Successor, true
}

// put keeps rec if it is newer than the record held for its root, and
// reports whether it did.
func (t *removals) put(rec *proto.Removal) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := rec.Root.KeyString()
	if old := t.recs[k]; old != nil && old.Time >= rec.Time {
		return false
	}
	t.recs[k] = rec
	if len(t.recs) > MaxRemovals {
		all := make([]*proto.Removal, 0, len(t.recs))
		for _, r := range t.recs {
			all = append(all, r)
		}
		slices.SortFunc(all, func(a, b *proto.Removal) int {
			if a.Restore != b.Restore {
				if a.Restore {
					return -1
				}
				return 1
			}
			return int(min(max(a.Time-b.Time, -1), 1))
		})
		for _, r := range all[:len(all)-MaxRemovals] {
			delete(t.recs, r.Root.KeyString())
		}
	}
	return true
}

// unsent returns the records p has not been sent.
func (t *removals) unsent(p peer.ID) []*proto.Removal {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*proto.Removal
	for k, r := range t.recs {
		if t.sent[p][k] != r.Time {
			out = append(out, r)
		}
	}
	return out
}

// markSent records that p has recs.
func (t *removals) markSent(p peer.ID, recs []*proto.Removal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent[p] == nil {
		t.sent[p] = map[string]int64{}
	}
	for _, r := range recs {
		t.sent[p][r.Root.KeyString()] = r.Time
	}
}

// all returns the records held, oldest first.
func (t *removals) all() []*proto.Removal {
	t.mu.Lock()
	all := make([]*proto.Removal, 0, len(t.recs))
	for _, r := range t.recs {
		all = append(all, r)
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b *proto.Removal) int { return int(min(max(a.Time-b.Time, -1), 1)) })
	return all
}
