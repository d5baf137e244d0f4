package replicate

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
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
