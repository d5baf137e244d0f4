package replicate

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// The repair round (docs/REPLICATION.md "Repair"): counting and acting.

// DefaultRecheck is the period over which every settled content is
// surveyed again: a round surveys the contents due and a rotating slice of
// the others (docs/REPLICATION.md "Repair").
const DefaultRecheck = 10 * time.Minute

// knownState is what the last check of a content found.
type knownState struct {
	holders holderSet // storage members (not this one) counted as holders
	first   time.Time // when this member first checked it
	level   level
	// settled says the content was at target with every answer in, nothing
	// in grace, in flight, over target or short of room: it is surveyed
	// again only in its slice of the recheck period, or when a holder is
	// no longer alive.
	settled bool
}

// same reports whether st and o say the same (first aside).
func (st *knownState) same(o *knownState) bool {
	if st.level != o.level || st.settled != o.settled || len(st.holders) != len(o.holders) {
		return false
	}
	for _, p := range st.holders {
		if !o.holders.has(p) {
			return false
		}
	}
	return true
}

// holderSet is the few members a content's last check counted as its
// holders: a slice, not a map, because one is kept for every content held
// (a map of two members costs ~200 bytes more per content, ~200 MB at a
// million contents; docs/REPLICATION.md "Scale"). Its peer IDs share the
// strings of the definition's or the state file's member list.
type holderSet []peer.ID

// has reports whether p is in s.
func (s holderSet) has(p peer.ID) bool { return slices.Contains(s, p) }

// add returns s with p in it.
func (s holderSet) add(p peer.ID) holderSet {
	if s.has(p) {
		return s
	}
	return append(s, p)
}

// without returns s without p, leaving s itself unchanged.
func (s holderSet) without(p peer.ID) holderSet {
	return slices.DeleteFunc(slices.Clone(s), func(q peer.ID) bool { return q == p })
}

// round is one repair round: spread removal records, apply them, and check
// the contents due (docs/REPLICATION.md "Repair"): those new here, those
// not settled at their last check, those with a holder no longer alive,
// and the slice of the others whose turn it is. Its work is proportional
// to what changed and to the slice, not to the whole store; only the
// listing of the store and a walk over the known states are not.
func (r *Replicator) round(ctx context.Context) {
	pl, ok := r.currentPolicy()
	if !ok {
		return
	}
	start := time.Now()
	r.spreadRemovals(ctx, pl)
	roots, err := r.store.Manifests(ctx)
	if err != nil {
		r.log.Warn("repair: listing contents", "err", err)
		return
	}
	// A holder gone for less than repair_after still counts (in grace):
	// the contents it holds need no check before its grace ends, so a
	// member restarting (or this one, before its pings are answered) does
	// not make everything it holds due.
	down := map[peer.ID]bool{}
	for _, p := range pl.storagePeers() {
		alive, since := r.members.Alive(p)
		if since.Before(r.started) {
			since = r.started
		}
		if !alive && start.Sub(since) >= pl.grace {
			down[p] = true
		}
	}
	r.mu.Lock()
	r.roundNo++
	r.slices = recheckSlices(r.recheck, len(roots))
	turn := r.roundNo % r.slices
	for k, t := range r.ended {
		if t.Before(start) {
			delete(r.ended, k) // this round's survey sees what it did
		}
	}
	if v := pl.def.Version; v != r.rulesVer {
		// New rules (copies, copies_min, members) may change every
		// content's level: none is settled under them yet.
		for _, st := range r.known {
			st.settled = false
		}
		r.rulesVer = v
		r.dirty = true
	}
	r.mu.Unlock()
	sum := Summary{LastRound: start}
	var due, coded []cid.Cid
	// A put stores its content before its seeding clears an earlier
	// removal of it (the root is known only once stored): while one is in
	// flight, removed contents are left for a later round, or the round
	// would delete what the put just stored ("seeding: reading manifest:
	// not found", seen in git annex testremote, which stores, removes and
	// stores the same chunks again).
	putting := r.puts.Load() > 0
	for _, root := range roots {
		if r.tombs.removed(root) {
			if !putting {
				r.dropRemoved(ctx, root)
			}
			continue
		}
		if r.isCoded(ctx, root) {
			coded = append(coded, root)
			continue
		}
		if st, ok := r.steady(root, turn, down); ok {
			sum.Contents++
			sum.count(st)
			continue
		}
		if r.complete(ctx, root) {
			due = append(due, root)
		} else if pl.storage {
			r.resume(ctx, root)
		}
	}
	// Coded contents: checked when due, repaired (coded_repair.go).
	sum.Coded, sum.Survives = r.checkCoded(ctx, pl, coded, turn, down)
	sum.Contents += len(due)
	sum.Checked = len(due)
	if len(due) > 0 {
		surveyed := time.Now()
		states := r.survey(ctx, pl, due)
		rejoin := r.rejoining(pl, time.Now())
		for _, root := range due {
			r.check(ctx, pl, root, states, surveyed, rejoin, &sum)
		}
	}
	r.setSummary(sum)
	r.saveKnown(roots, false)
}

// isCoded reports whether root is an erasure-coded content. A root names
// one manifest forever, so a content with a kept state of either kind is
// not read again: only contents new to the round cost a manifest read (at
// 100,000 contents, reading every manifest every round was most of an idle
// daemon's CPU; docs/PERFORMANCE.md "Scale").
func (r *Replicator) isCoded(ctx context.Context, root cid.Cid) bool {
	k := root.KeyString()
	r.mu.Lock()
	_, replicated := r.known[k]
	r.mu.Unlock()
	if replicated {
		return false
	}
	r.coded.mu.Lock()
	_, coded := r.coded.known[k]
	r.coded.mu.Unlock()
	return coded || r.codedRoot(ctx, root)
}

// maxRecheck bounds the settled contents a round rechecks: the recheck
// period is Recheck, or longer when the store holds more than maxRecheck
// contents per round of it. Measured at 100,000 contents with the 10
// minute period (5,000 rechecked every 30 s round): ~8 s of CPU per
// minute per idle daemon, from the recheck alone (docs/PERFORMANCE.md
// "Scale"). At this bound a member rechecks ~500 contents a minute
// whatever it holds: every content within ~3.3 hours at 100,000 and
// ~33 hours at 1,000,000. Losses a member reports (a restart, a removal)
// and holders going away are seen at once, not through the recheck; a
// copy damaged on a holder's disk is found by that holder's audits.
const maxRecheck = 256

// recheckSlices is how many rounds the recheck of n held contents spreads
// over: the rounds of the recheck period, more when a slice would pass
// maxRecheck.
func recheckSlices(period uint64, n int) uint64 {
	return max(period, 1, (uint64(n)+maxRecheck-1)/maxRecheck)
}

// steady returns the level of root when it is not due for a check this
// round: known and settled, no holder down, and not its turn.
func (r *Replicator) steady(root cid.Cid, turn uint64, down map[peer.ID]bool) (level, bool) {
	r.mu.Lock()
	st, ok := r.known[root.KeyString()]
	r.mu.Unlock()
	if !ok || !st.settled || slice(root, r.slices) == turn {
		return 0, false
	}
	for p := range down {
		if st.holders.has(p) {
			return 0, false
		}
	}
	return st.level, true
}

// rejoining reports whether a storage member lost (silent for longer than
// repair_after) was heard from again less than the membership's
// reconnecting time before now: it may be the first member of a healed
// partition to reconnect, and the others of its side, holding copies this
// member counts as gone, not be heard from yet. Nothing is placed (nor
// rebuilt) meanwhile: a copy is placed again only after the members that
// may hold it were asked (TestPartition placed a needless copy the moment
// the first member of the other side reconnected).
//
// The silence counts from no earlier than this replicator's start, as its
// grace does (a member not heard from since the start is gone only
// repair_after after it): a member first heard from a while after the
// membership began, but within repair_after of the loop's start, was never
// counted as gone here.
func (r *Replicator) rejoining(pl policy, now time.Time) bool {
	for _, p := range pl.storagePeers() {
		at, away := r.members.Returned(p)
		if at.IsZero() || now.Sub(at) >= r.members.Reconnecting() {
			continue
		}
		from := at.Add(-away)
		if from.Before(r.started) {
			from = r.started
		}
		if at.Sub(from) >= pl.grace {
			return true
		}
	}
	return false
}

// slice is root's turn among n: the last 8 bytes of its digest, which are
// uniform over contents.
func slice(root cid.Cid, n uint64) uint64 {
	b := root.Bytes()
	if len(b) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b[len(b)-8:]) % n
}

// count adds a content at level l to the summary.
func (s *Summary) count(l level) {
	switch l {
	case belowMin:
		s.BelowMin++
		s.BelowTarget++
	case belowTarget:
		s.BelowTarget++
	default:
		s.AtTarget++
	}
}

func (r *Replicator) setSummary(s Summary) {
	r.mu.Lock()
	r.summary = s
	r.mu.Unlock()
}

// check counts the copies of one content (decide.go says what to do) and
// acts: queues a placement when below `copies` (if this member is the one
// to act), trims its own copy when above.
//
// A storage member's answer for the content is one of three: it holds a
// full copy, it answered that it does not, or unknown (it was not asked, or
// it did not answer in time). While an alive member's answer is unknown
// nothing is placed: a content is placed again only after the members that
// might hold it answered that they do not. A member that is not alive is
// gone; it still counts for repair_after after it went away when it held
// the content at the last round, or when this member knows nothing of the
// content yet (new here, or everything after a restart).
//
// A placement from here that ended after the survey began (surveyed) may
// have made a copy the answers do not show yet: the content is then left
// for the next round, so a copy is never placed twice for one loss.
// rejoin says a member counted as gone came back lately (rejoining): the
// round computes it once for all its checks.
func (r *Replicator) check(ctx context.Context, pl policy, root cid.Cid, states map[peer.ID]map[string]haveState, surveyed time.Time, rejoin bool, sum *Summary) {
	k := root.KeyString()
	now := time.Now()
	var live []peer.ID
	if pl.storage {
		live = append(live, pl.self)
	}
	skip := map[peer.ID]bool{pl.self: true}
	r.mu.Lock()
	var prev holderSet
	first := now
	if old, ok := r.known[k]; ok {
		prev, first = old.holders, old.first
	}
	// New here (put lately, or everything after a restart): placements
	// of it may be under way from elsewhere.
	fresh := now.Sub(first) < pl.grace
	t := tallyHolders(pl, k, states, prev, fresh, r.members.Alive, r.started, now)
	live = append(live, t.live...)
	next, grace, unknown, away := t.next, t.grace, t.unknown, t.away
	for p := range t.skip {
		skip[p] = true
	}
	pending := r.pending[k]
	npending := len(pending)
	for p := range pending {
		skip[p] = true
	}
	over, fetching := r.over[k], r.fetching[k] > 0
	stale := !r.ended[k].Before(surveyed)
	r.mu.Unlock()

	v := decide(pl, r.every, root, seen{live: live, grace: grace, unknown: unknown, pending: npending, fetching: fetching,
		overSince: over, stale: stale, rejoining: rejoin}, now)
	sum.count(v.level)
	if v.level != atTarget && v.place == 0 && r.log.Enabled(ctx, slog.LevelDebug) {
		r.log.Debug("content below target; not placing from here", "cid", root, "live", len(live), "grace", grace,
			"unknown", unknown, "pending", npending, "fetching", fetching, "stale", stale, "rejoining", rejoin,
			"acting", actsFor(pl.self, root, live))
	}
	if unknown > 0 {
		sum.Unknown++
	}
	if npending > 0 {
		sum.InRepair++
	}
	noRoom := r.stillNoRoom(k, v.level)
	if noRoom {
		sum.NoRoom++
	}
	r.mu.Lock()
	if v.overSince.IsZero() {
		delete(r.over, k)
	} else {
		r.over[k] = v.overSince
	}
	// A known holder gone less than repair_after ago does not unsettle:
	// the round makes the content due again when its grace ends (steady).
	settled := v.level == atTarget && unknown == 0 && grace == away && npending == 0 && !noRoom &&
		!fetching && !stale && v.overSince.IsZero() && v.place == 0 && !v.trim
	st := &knownState{holders: next, level: v.level, settled: settled, first: first}
	if old := r.known[k]; old == nil || !old.same(st) {
		r.dirty = true
	}
	r.known[k] = st
	if v.trim {
		delete(r.known, k)
	}
	r.mu.Unlock()
	if v.place == 0 {
		// Placed by another member meanwhile, or no longer acting: a
		// placement queued by an earlier round is no longer wanted.
		r.queue.cancel(k)
	}
	// A layout the rules no longer want is re-coded (recode.go) by the
	// member that acts for it, once its put reached copies_min and
	// nothing of it is in flight from here.
	// Only the acting member reads the manifest to tell.
	if r.put != nil && pl.storage {
		acts := !v.trim && unknown == 0 && npending == 0 && !fetching && len(live) >= pl.min && actsFor(pl.self, root, live)
		if !acts {
			r.noteRecode(pl, root, nil, false)
		} else if m, err := r.store.Manifest(ctx, root); err == nil {
			r.noteRecode(pl, root, m, true)
		}
	}
	switch {
	case v.place > 0:
		r.queue.push(&job{pl: pl, root: root, key: k, level: v.level, copies: len(live) + grace, need: v.place, skip: skip, live: live})
	case v.trim:
		if err := r.store.Remove(ctx, root); err != nil && !errors.Is(err, chunk.ErrNotFound) {
			r.log.Warn("trimming an extra copy", "cid", root, "err", err)
			return
		}
		r.log.Info("extra copy trimmed", "cid", root, "copies", len(live)-1, "target", pl.copies)
	}
}

// tally is what the survey answers and liveness say of one content's
// holders among the other storage members.
type tally struct {
	live    []peer.ID        // answered: a full copy
	next    holderSet        // the holders to remember (knownState.holders)
	skip    map[peer.ID]bool // not to be placed on: holders, answers unknown, in grace
	grace   int              // counted although not seen: gone less than repair_after ago
	unknown int              // alive but no answer
	away    int              // of grace, the known holders (not fresh ones)
}

// tallyHolders counts the copies of the content k on the other storage
// members: an answer says full, partial or none; a member that did not
// answer is unknown while alive, and counts for repair_after after it went
// away when it held the content at the last check (prev) or the content is
// new here (fresh). A member counted only because the content is fresh is
// not remembered as a holder: at the next check it would be a known
// holder in grace, the content "settled" with a copy nobody has, and a
// member back alive without it would never be checked again (the chaos
// run found a content left at 3 of 4 copies that way).
func tallyHolders(pl policy, k string, states map[peer.ID]map[string]haveState, prev holderSet, fresh bool,
	alive func(peer.ID) (bool, time.Time), started, now time.Time) tally {
	t := tally{skip: map[peer.ID]bool{}}
	for _, p := range pl.storagePeers() {
		if st, answered := states[p][k]; answered {
			switch {
			case st == haveComplete:
				t.live = append(t.live, p)
				t.next = t.next.add(p)
				t.skip[p] = true
			case st == havePartial && fresh:
				t.grace++ // being filled by the placement that made it new
				t.skip[p] = true
			}
			continue
		}
		t.skip[p] = true
		ok, since := alive(p)
		if ok {
			t.unknown++
			if prev.has(p) {
				t.next = t.next.add(p) // still believed to hold it
			}
			continue
		}
		if since.IsZero() || since.Before(started) {
			since = started
		}
		if (prev.has(p) || fresh) && now.Sub(since) < pl.grace {
			t.grace++
			if prev.has(p) {
				t.away++               // a known holder in grace: steady until it ends
				t.next = t.next.add(p) // counted until its grace ends
			}
		}
	}
	return t
}

// resume completes a content held in part here (a placement interrupted by
// a restart), unless a fetch of it already runs.
func (r *Replicator) resume(ctx context.Context, root cid.Cid) {
	r.mu.Lock()
	busy := r.fetching[root.KeyString()] > 0
	r.mu.Unlock()
	if busy {
		return
	}
	done := r.busyFetching(root)
	if !r.background(ctx, func(ctx context.Context) {
		defer done()
		select {
		case r.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		defer func() { <-r.slots }()
		if err := r.x.Fetch(ctx, root, nil); err != nil {
			r.log.Info("resuming a partial copy failed", "cid", root, "err", err)
			if isNoSpace(err) {
				r.dropPartial(ctx, root, err)
			}
			return
		}
		r.log.Info("partial copy completed", "cid", root)
	}) {
		done()
	}
}
