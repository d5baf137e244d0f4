package replicate

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"math/bits"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
)

// The repair round's part for coded contents (docs/ERASURE.md "Repair"):
// which coded contents are due, what a check of one finds, and whether
// this member queues the rebuild of its lost shard sets. A content is
// checked (one shard survey) only when it is due: new here, not settled at
// its last check, a holder of it no longer alive, or its slice of the
// recheck period; the others are counted from their last check.

// codedBook is what the repair rounds know of the coded contents held
// here. Its zero value is ready for use.
type codedBook struct {
	mu       sync.Mutex
	known    map[string]*codedKnown // root → its last check
	rulesVer int64                  // version of the definition known was checked under
	repaired uint64                 // shard sets rebuilt and placed from here
}

// codedKnown is what the last check of a coded content found.
type codedKnown struct {
	// sets holds the shard sets of the storage members other than this
	// one counted at the last check: those that answered, and those that
	// did not but are not lost yet (missing).
	sets  map[peer.ID]uint32
	first time.Time // when this member first checked it
	grew  time.Time // when h last grew (a put or a repair placing sets)
	// short is when a check last found fewer sets than the success
	// threshold (a rebuild due, here or on another member); zero once
	// every set is held again.
	short    time.Time
	h        int
	survives int
	// settled: every counted holder answered and no repair is due or
	// under way; checked again only in its slice or when a holder is down.
	settled bool
	// failed lists the members that failed an audit of it: not counted
	// until they answer a later survey.
	failed map[peer.ID]bool
	// doubled is when this member's set was first seen held by another
	// live member too (a member back after its set was rebuilt
	// elsewhere); zero when it is not.
	doubled time.Time
}

// settle records a check's count of the content and says whether it is
// settled: every counted holder answered and nothing is in flight (quiet),
// at least the success threshold (need) of the n sets held counting the
// missing holders (a; h without them), and no rebuild under way.
//
// A rebuild found due at an earlier check (fewer than need sets) may still
// be placing its sets from another member: between its first and its last
// set the content is above the threshold but not back where it will stay.
// It is not settled, and so is surveyed every round, until every set is
// held again or nothing grew for repair_after; settled at the first set
// placed, this member would keep that count (status's survives) until its
// recheck turn, minutes or hours later.
func (st *codedKnown) settle(now time.Time, grace time.Duration, a, h, need, n int, quiet bool) bool {
	switch {
	case a < need:
		st.short = now
	case h >= n:
		st.short = time.Time{}
	}
	rebuilding := false
	if !st.short.IsZero() {
		last := st.short
		if st.grew.After(last) {
			last = st.grew
		}
		rebuilding = now.Sub(last) < grace
	}
	return quiet && a >= need && !rebuilding
}

// codedJob is the part of a placement job that rebuilds shard sets.
type codedJob struct {
	m     *chunk.Manifest
	sets  []int              // the lost sets, to rebuild and place
	holds map[peer.ID]uint32 // live holders other than this one, by their sets
	local uint32             // sets held here (every bit: the whole content)
}

// CodedRepaired returns how many shard sets this member has rebuilt and
// placed since it started.
func (r *Replicator) CodedRepaired() uint64 {
	r.coded.mu.Lock()
	defer r.coded.mu.Unlock()
	return r.coded.repaired
}

// checkCoded checks the coded contents roots that are due (see above) and
// returns how many there are and their counts by how many more member
// losses each survives.
func (r *Replicator) checkCoded(ctx context.Context, pl policy, roots []cid.Cid, turn uint64, down map[peer.ID]bool) (int, map[int]int) {
	b := &r.coded
	b.mu.Lock()
	if b.known == nil {
		b.known = map[string]*codedKnown{}
	}
	if v := pl.def.Version; v != b.rulesVer {
		for _, st := range b.known {
			st.settled = false
		}
		b.rulesVer = v
	}
	held := make(map[string]bool, len(roots))
	for _, root := range roots {
		held[root.KeyString()] = true
	}
	for k := range b.known {
		if !held[k] {
			delete(b.known, k)
		}
	}
	b.mu.Unlock()
	if len(roots) == 0 {
		return 0, nil
	}
	out := map[int]int{}
	rejoin := r.rejoining(pl, time.Now())
	for _, root := range roots {
		if s, ok := r.codedSteady(root, turn, down); ok {
			out[s]++
			continue
		}
		if s, ok := r.checkCodedRoot(ctx, pl, root, rejoin); ok {
			out[s]++
		}
	}
	return len(roots), out
}

// codedSteady returns the survives of root when it is not due this round.
func (r *Replicator) codedSteady(root cid.Cid, turn uint64, down map[peer.ID]bool) (int, bool) {
	r.coded.mu.Lock()
	defer r.coded.mu.Unlock()
	st, ok := r.coded.known[root.KeyString()]
	if !ok || !st.settled || slice(root, r.slices) == turn {
		return 0, false
	}
	for p := range st.sets {
		if down[p] {
			return 0, false
		}
	}
	return st.survives, true
}

// checkCodedRoot surveys which members hold which shard sets of root,
// records what it found and queues the rebuild of the lost sets when this
// member is the one to act. It returns the content's survives; ok is false
// when root is not a coded content recorded here.
//
// A holder that does not answer keeps its role while it is alive (slow is
// not dead) and for repair_after after it was last alive; then it is lost.
// Nothing is rebuilt while an alive storage member has not answered: it may
// hold a set this member has not seen yet.
// With a = the happiness of the live and missing holders and R the repair
// threshold (the success threshold), the lost sets are rebuilt when a < R,
// by the first live set holder in rendezvous order, once the content is
// older here than repair_after and no holder was added for repair_after
// (a put may still be placing its sets).
// Nothing is rebuilt while rejoin (a member counted as gone came back
// lately: rejoining, computed once per round).
func (r *Replicator) checkCodedRoot(ctx context.Context, pl policy, root cid.Cid, rejoin bool) (int, bool) {
	m, err := r.store.Manifest(ctx, root)
	if err != nil || !m.Coded() {
		return 0, false
	}
	k, n := m.Layout.K, m.Layout.K+m.Layout.M
	full := uint32(1)<<n - 1
	now := time.Now()
	answers := r.surveySets(ctx, pl, root)
	var self uint32
	if pl.storage {
		if r.complete(ctx, root) {
			self = full
		} else if sets, err := r.store.HeldShards(ctx, root); err == nil {
			self = exchange.ShardMask(sets)
		}
	}
	// An alive storage member that did not answer may hold a set this
	// member never saw (slow is not dead): nothing is rebuilt until every
	// alive member answered.
	unknown := 0
	for _, p := range pl.storagePeers() {
		if _, answered := answers[p]; !answered {
			if alive, _ := r.members.Alive(p); alive {
				unknown++
			}
		}
	}
	key := root.KeyString()
	r.mu.Lock()
	pending := len(r.pending[key]) > 0
	r.mu.Unlock()

	b := &r.coded
	b.mu.Lock()
	st := b.known[key]
	if st == nil {
		st = &codedKnown{first: now}
		b.known[key] = st
	}
	live := map[peer.ID]uint32{}
	for p, mask := range answers {
		if mask &= full; mask != 0 && !st.failed[p] {
			live[p] = mask
		}
		delete(st.failed, p) // surveyed again: its answer counts
	}
	missing := map[peer.ID]uint32{}
	for p, mask := range st.sets {
		if _, answered := answers[p]; answered || st.failed[p] {
			continue
		}
		alive, since := r.members.Alive(p)
		if since.IsZero() || since.Before(r.started) {
			since = r.started
		}
		if alive || now.Sub(since) < pl.grace {
			missing[p] = mask
		}
	}
	sets := map[peer.ID][]int{}
	if self != 0 {
		sets[pl.self] = exchange.MaskSets(self)
	}
	for p, mask := range live {
		sets[p] = exchange.MaskSets(mask)
	}
	h := happiness(sets, n)
	for p, mask := range missing {
		sets[p] = exchange.MaskSets(mask)
	}
	a := happiness(sets, n)
	next := maps.Clone(live)
	maps.Copy(next, missing)
	// Members that held a set and are lost stay out of the candidates for
	// the lost sets: one may be connected yet not alive by its pings, and a
	// member holds at most one set of a content.
	skip := map[peer.ID]bool{pl.self: true}
	for p := range st.sets {
		skip[p] = true
	}
	for p := range next {
		skip[p] = true
	}
	st.sets = next
	if h > st.h {
		st.grew = now
	}
	st.h, st.survives = h, h-k
	// New here, or holders still being added (a put placing its sets):
	// no repair (nor trim) until repair_after has passed without a new
	// holder.
	fresh := now.Sub(st.first) < pl.grace || now.Sub(st.grew) < pl.grace
	need := successOf(pl, m)
	// A set held twice (a member back after its set was rebuilt
	// elsewhere): once that has lasted max(repair_after, 3 rounds) with
	// every holder answering, the lower-ranked holder of it gives its
	// set up. The set is still held, so what the content survives does
	// not change.
	var twins []peer.ID
	if pl.storage && bits.OnesCount32(self) == 1 {
		for p, mask := range live {
			if mask != full && mask&self != 0 {
				twins = append(twins, p)
			}
		}
	}
	trim := false
	switch {
	case len(twins) == 0 || len(missing) > 0 || unknown > 0 || pending || fresh:
		st.doubled = time.Time{}
	case st.doubled.IsZero():
		st.doubled = now
	case now.Sub(st.doubled) >= max(pl.grace, 3*r.every):
		ranked := rank(root, append(twins, pl.self))
		trim = ranked[len(ranked)-1] == pl.self
	}
	st.settled = st.settle(now, pl.grace, a, h, need, n,
		len(missing) == 0 && unknown == 0 && !pending && len(twins) == 0)
	if trim {
		delete(b.known, key)
	}
	b.mu.Unlock()
	// A scheme the rules no longer want is re-coded (recode.go) by the
	// first live holder in rendezvous order, as a repair is, once h
	// reached the success threshold with every holder answering.
	holders := []peer.ID{pl.self}
	for p := range live {
		holders = append(holders, p)
	}
	r.noteRecode(pl, root, m, !trim && self != 0 && len(missing) == 0 && unknown == 0 && !pending && h >= need &&
		actsFor(pl.self, root, holders))
	if trim {
		if err := r.store.Remove(ctx, root); err != nil && !errors.Is(err, chunk.ErrNotFound) {
			r.log.Warn("trimming a surplus shard set", "cid", root, "err", err)
			return h - k, true
		}
		r.log.Info("surplus shard set trimmed", "cid", root, "set", exchange.MaskSets(self), "also_held_by", len(twins))
		return h - k, true
	}

	if a >= need {
		return h - k, true
	}
	acting := actsFor(pl.self, root, holders)
	if pending || fresh || unknown > 0 || self == 0 || rejoin || !acting {
		if r.log.Enabled(ctx, slog.LevelDebug) {
			r.log.Debug("coded content below its repair threshold; not rebuilding from here", "cid", root,
				"counted", a, "repair", need, "pending", pending, "fresh", fresh, "unknown", unknown,
				"held_here", self != 0, "rejoining", rejoin, "acting", acting)
		}
		return h - k, true
	}
	// The lost sets: those no member holds apart from whole copies (a
	// whole copy matches one set only, see happiness).
	var covered uint32
	for _, mask := range next {
		if mask != full {
			covered |= mask
		}
	}
	if self != full {
		covered |= self
	}
	var lost []int
	for i := range n {
		if covered&(1<<i) == 0 {
			lost = append(lost, i)
		}
	}
	if len(lost) == 0 {
		return h - k, true
	}
	r.log.Info("coded content below its repair threshold; rebuilding lost shard sets", "cid", root,
		"survives", h-k, "counted", a, "repair", need, "sets", lost)
	r.queue.push(&job{pl: pl, root: root, key: key, level: belowMin, copies: h, need: len(lost), skip: skip,
		coded: &codedJob{m: m, sets: lost, holds: live, local: self}})
	return h - k, true
}

// codedAuditFailed records that p failed an audit of the coded content
// root: p no longer counts as a holder of it until it answers a survey
// again, and root is checked at the next round.
func (r *Replicator) codedAuditFailed(root cid.Cid, p peer.ID) {
	r.coded.mu.Lock()
	defer r.coded.mu.Unlock()
	st := r.coded.known[root.KeyString()]
	if st == nil {
		return
	}
	if st.failed == nil {
		st.failed = map[peer.ID]bool{}
	}
	st.failed[p] = true
	delete(st.sets, p)
	st.settled = false
}
