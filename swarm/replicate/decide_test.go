package replicate

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/rules"
)

// TestDecide is the repair decision table (docs/REPLICATION.md "Repair",
// "Trimming"): what a member does about one content given the holders it
// saw, the policy and the time.
func TestDecide(t *testing.T) {
	root := testRoot(t, "content")
	var ps []peer.ID
	for range 4 {
		p, _ := testPeer(t)
		ps = append(ps, p)
	}
	ranked := rank(root, slices.Clone(ps)) // ranked[0] acts, ranked[last] trims
	first, second, third, last := ranked[0], ranked[1], ranked[2], ranked[3]
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const every = 30 * time.Second
	grace := time.Hour
	policyOf := func(self peer.ID, storage bool) policy {
		return policy{self: self, storage: storage, copies: 3, min: 2, grace: grace}
	}
	longAgo := now.Add(-2 * grace)
	lately := now.Add(-time.Minute)

	for _, c := range []struct {
		name    string
		self    peer.ID
		client  bool // self has role client
		seen    seen
		want    verdict
		wantNew bool // overSince must be now
	}{
		{name: "at target: nothing", self: first,
			seen: seen{live: []peer.ID{first, second, third}},
			want: verdict{level: atTarget}},
		{name: "one lost: the first-ranked holder places one", self: first,
			seen: seen{live: []peer.ID{first, second}},
			want: verdict{level: belowTarget, place: 1}},
		{name: "one lost: another holder does not act", self: second,
			seen: seen{live: []peer.ID{first, second}},
			want: verdict{level: belowTarget}},
		{name: "two lost: below min, place two", self: first,
			seen: seen{live: []peer.ID{first}},
			want: verdict{level: belowMin, place: 2}},
		{name: "a placement in flight counts", self: first,
			seen: seen{live: []peer.ID{first, second}, pending: 1},
			want: verdict{level: belowTarget}},
		{name: "a placement ended since the survey began: answers stale, nothing placed", self: first,
			seen: seen{live: []peer.ID{first, second}, stale: true},
			want: verdict{level: belowTarget}},
		{name: "a lost member came back lately: the rest of its side may hold copies, nothing placed", self: first,
			seen: seen{live: []peer.ID{first, second}, rejoining: true},
			want: verdict{level: belowTarget}},
		{name: "over target but stale: no trim", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, stale: true, overSince: longAgo},
			want: verdict{level: atTarget}},
		{name: "an unanswered member is unknown, not absent: nothing placed", self: first,
			seen: seen{live: []peer.ID{first}, unknown: 2},
			want: verdict{level: belowMin}},
		{name: "over target with a member unknown: no trim", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, unknown: 1, overSince: longAgo},
			want: verdict{level: atTarget}},
		{name: "a holder in grace counts", self: first,
			seen: seen{live: []peer.ID{first, second}, grace: 1},
			want: verdict{level: atTarget}},
		{name: "held by no storage member: the client that put it places all", self: first, client: true,
			seen: seen{},
			want: verdict{level: belowMin, place: 3}},
		{name: "over: the clock starts", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}},
			want: verdict{level: atTarget}, wantNew: true},
		{name: "over, not long enough: wait", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, overSince: lately},
			want: verdict{level: atTarget, overSince: lately}},
		{name: "over long enough: the last-ranked trims", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, overSince: longAgo},
			want: verdict{level: atTarget, trim: true}},
		{name: "over long enough: another keeps its copy", self: third,
			seen: seen{live: []peer.ID{first, second, third, last}, overSince: longAgo},
			want: verdict{level: atTarget, overSince: longAgo}},
		{name: "over but a holder in grace: no trim, clock cleared", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, grace: 1, overSince: longAgo},
			want: verdict{level: atTarget}},
		{name: "over but a placement in flight: no trim", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, pending: 1, overSince: longAgo},
			want: verdict{level: atTarget}},
		{name: "over but fetching here: no trim", self: last,
			seen: seen{live: []peer.ID{first, second, third, last}, fetching: true, overSince: longAgo},
			want: verdict{level: atTarget}},
		{name: "a client holder never trims", self: last, client: true,
			seen: seen{live: []peer.ID{first, second, third, last}, overSince: longAgo},
			want: verdict{level: atTarget}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := decide(policyOf(c.self, !c.client), every, root, c.seen, now)
			want := c.want
			if c.wantNew {
				want.overSince = now
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}

// The trim window is max(repair_after, 3 rounds).
func TestDecideTrimWindow(t *testing.T) {
	root := testRoot(t, "window")
	var ps []peer.ID
	for range 3 {
		p, _ := testPeer(t)
		ps = append(ps, p)
	}
	ranked := rank(root, slices.Clone(ps))
	pl := policy{self: ranked[2], storage: true, copies: 2, min: 1, grace: time.Second}
	now := time.Now()
	s := seen{live: ps, overSince: now.Add(-time.Minute)}
	if v := decide(pl, 30*time.Second, root, s, now); v.trim {
		t.Fatal("trimmed before three rounds had passed")
	}
	s.overSince = now.Add(-91 * time.Second)
	if v := decide(pl, 30*time.Second, root, s, now); !v.trim {
		t.Fatal("not trimmed after three rounds and repair_after")
	}
}

func TestDrainNeed(t *testing.T) {
	a, _ := testPeer(t)
	b, _ := testPeer(t)
	pl := policy{copies: 2, min: 1}
	for _, c := range []struct {
		others []peer.ID
		want   int
	}{{nil, 2}, {[]peer.ID{a}, 1}, {[]peer.ID{a, b}, 0}, {[]peer.ID{a, b, a}, 0}} {
		if got := drainNeed(pl, c.others); got != c.want {
			t.Errorf("%d others: need %d, want %d", len(c.others), got, c.want)
		}
	}
}

// A member down when a content is new here counts for repair_after (a
// placement may be filling it), but it is not remembered as a holder: at
// the next check, once it is back without the content, the content is
// below target, not "settled" with a copy nobody has. The chaos run found
// a content left at 3 of 4 copies for good that way.
func TestTallyDoesNotRememberFreshAbsentMembers(t *testing.T) {
	self, _ := testPeer(t)
	holder, _ := testPeer(t)
	down, _ := testPeer(t)
	def := &rules.Definition{}
	for i, p := range []peer.ID{self, holder, down} {
		def.Members = append(def.Members, rules.Member{Name: fmt.Sprint("m", i), Peer: rules.PeerID(p), Role: rules.RoleStorage})
	}
	pl := policy{def: def, self: self, storage: true, copies: 3, min: 2, grace: time.Minute}
	root := testRoot(t, "content")
	k := root.KeyString()
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	started := now.Add(-time.Hour)
	isDown := true
	alive := func(p peer.ID) (bool, time.Time) {
		if p == down && isDown {
			return false, now.Add(-time.Second)
		}
		return true, now
	}
	states := map[peer.ID]map[string]haveState{holder: {k: haveComplete}}

	// First check, the content new here: the member down counts.
	t1 := tallyHolders(pl, k, states, nil, true, alive, started, now)
	if t1.grace != 1 || t1.away != 0 || len(t1.live) != 1 {
		t.Fatalf("first check: %+v, want the holder live and the member down in grace (not away)", t1)
	}
	if t1.next.has(down) {
		t.Fatal("the member down is remembered as a holder of a content it was never seen to hold")
	}
	// Second check, still fresh and the member still down: still in grace,
	// never a known holder away (which would settle the content).
	t2 := tallyHolders(pl, k, states, t1.next, true, alive, started, now.Add(time.Second))
	if t2.grace != 1 || t2.away != 0 {
		t.Fatalf("second check: %+v, want grace 1 and away 0", t2)
	}
	// Back, and it answers that it does not hold it: two copies of three.
	isDown = false
	states[down] = map[string]haveState{k: haveNone}
	t3 := tallyHolders(pl, k, states, t2.next, true, alive, started, now.Add(2*time.Second))
	if t3.grace != 0 || t3.unknown != 0 || len(t3.live) != 1 {
		t.Fatalf("member back without it: %+v, want only the holder counted", t3)
	}
	// A known holder gone is remembered, and away, for its grace.
	prev := holderSet{holder, down}
	isDown = true
	delete(states, down)
	t4 := tallyHolders(pl, k, states, prev, false, alive, started, now)
	if t4.grace != 1 || t4.away != 1 || !t4.next.has(down) {
		t.Fatalf("a known holder gone: %+v, want it in grace, away and remembered", t4)
	}
}

// The recheck slice is bounded: a large store spreads its recheck over
// more rounds than the period's, a small one keeps the period.
func TestRecheckSlices(t *testing.T) {
	for _, c := range []struct {
		period uint64
		n      int
		want   uint64
	}{
		{20, 0, 20},
		{20, 1000, 20},
		{20, 20 * maxRecheck, 20},
		{20, 20*maxRecheck + 1, 21},
		{20, 100000, 391},
		{20, 1000000, 3907},
		{0, 10, 1},
	} {
		if got := recheckSlices(c.period, c.n); got != c.want {
			t.Errorf("recheckSlices(%d, %d) = %d, want %d", c.period, c.n, got, c.want)
		}
		if c.n > 0 && uint64(c.n)/recheckSlices(c.period, c.n) > maxRecheck {
			t.Errorf("%d contents over %d slices: more than %d a round", c.n, recheckSlices(c.period, c.n), maxRecheck)
		}
	}
}
