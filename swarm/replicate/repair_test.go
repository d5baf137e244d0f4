package replicate

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// The storm of issue 17 in small: a member whose survey answers come late
// (its exchange stalls for longer than a survey page may take) is alive by
// its pings, so it is slow, not gone: it is not disconnected, its contents
// are unknown rather than absent, and nothing is placed. Once it answers,
// slowly but page after page, the survey completes although it takes far
// longer than one page's deadline.
func TestSlowMemberIsNotGoneAndCausesNoPlacement(t *testing.T) {
	nodes := testSwarm(t, swarmConfig{n: 3, interval: 150 * time.Millisecond, page: 8, pageTimeout: 400 * time.Millisecond,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: 300 * time.Millisecond}})
	a, slow := nodes[0], nodes[1]
	const n = 40
	putAll(t, n, nodes...)
	slow.delay.Store(int64(2 * time.Second))
	for _, nd := range nodes {
		nd.start(t)
	}
	connectAll(t, nodes)

	a.rounds(t, 6, 20*time.Second) // at least repair_after several times over
	if s := a.r.Summary(); s.Unknown != n {
		t.Fatalf("with the member stalled, %d of %d contents unknown, want all: %+v", s.Unknown, n, s)
	}
	if a.h.Host.Network().Connectedness(slow.h.Host.ID()) != network.Connected {
		t.Fatal("the slow member was disconnected")
	}
	if alive, _ := a.m.Alive(slow.h.Host.ID()); !alive {
		t.Fatal("the slow member is not alive by its pings")
	}
	for i, nd := range nodes {
		if s := nd.r.Summary(); s.Placements != 0 || s.Queued != 0 {
			t.Fatalf("member %d started %d placements and queued %d with every content at target", i, s.Placements, s.Queued)
		}
	}

	// Slow but answering: ~30 ms a request, 40 requests take more than
	// three page deadlines, each page of 8 well within one.
	slow.delay.Store(int64(30 * time.Millisecond))
	swarmtest.WaitFor(t, 30*time.Second, "a complete survey of the slow member", func() bool {
		s := a.r.Summary()
		return s.Unknown == 0 && s.AtTarget == n
	})
	for i, nd := range nodes {
		if s := nd.r.Summary(); s.Placements != 0 {
			t.Fatalf("member %d started %d placements with every content at target", i, s.Placements)
		}
	}
}

// A member that does not answer for a content may hold it: nothing is
// placed until it answers that it does not; then the content is placed
// on it.
func TestUnknownIsNotAbsent(t *testing.T) {
	nodes := testSwarm(t, swarmConfig{n: 3, interval: 150 * time.Millisecond, page: 8, pageTimeout: 300 * time.Millisecond,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: 200 * time.Millisecond}})
	a, b, c := nodes[0], nodes[1], nodes[2]
	roots := putAll(t, 3, a, b) // c holds none of them
	c.delay.Store(int64(2 * time.Second))
	for _, nd := range nodes {
		nd.start(t)
	}
	connectAll(t, nodes)
	a.rounds(t, 5, 20*time.Second)
	b.rounds(t, 1, 20*time.Second)
	for i, nd := range nodes {
		if s := nd.r.Summary(); s.Placements != 0 {
			t.Fatalf("member %d placed %d contents on an unknown answer", i, s.Placements)
		}
	}
	if c.holds(roots[0]) {
		t.Fatal("a content arrived on the stalled member")
	}

	c.delay.Store(0)
	swarmtest.WaitFor(t, 30*time.Second, "the contents placed on the member that answered it lacks them", func() bool {
		for _, root := range roots {
			if !c.holds(root) {
				return false
			}
		}
		return true
	})
	if a.r.Summary().Placements+b.r.Summary().Placements == 0 {
		t.Fatal("contents arrived without a placement counted")
	}
}

// After a start, a member that is not there counts as a holder for
// repair_after: the contents it may hold are not placed elsewhere at once.
// Once repair_after has passed, they are.
func TestGraceAfterRestart(t *testing.T) {
	const grace = 3 * time.Second
	nodes := testSwarm(t, swarmConfig{n: 3, interval: 100 * time.Millisecond,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: grace}})
	a, b, down := nodes[0], nodes[1], nodes[2]
	putAll(t, 10, nodes...)
	// The grace of a member gone counts from its disconnection, which
	// happens inside Close: t0 is taken before it.
	t0 := time.Now()
	if err := down.h.Host.Close(); err != nil {
		t.Fatal(err)
	}
	a.start(t)
	b.start(t)
	swarmtest.Connect(t, a.h.Host, b.h.Host)
	a.rounds(t, 3, 10*time.Second)
	if time.Since(t0) >= grace-500*time.Millisecond {
		t.Skip("the machine is too slow for rounds within repair_after")
	}
	if s := a.r.Summary(); s.Placements != 0 || s.Queued != 0 || s.BelowTarget != 0 {
		t.Fatalf("within repair_after of a start: %+v", s)
	}
	swarmtest.WaitFor(t, 20*time.Second, "repair once repair_after has passed", func() bool {
		s := a.r.Summary()
		return s.BelowTarget == 10 && s.Placements+b.r.Summary().Placements > 0
	})
	if time.Since(t0) < grace {
		t.Fatalf("repair started %s after start, before repair_after (%s)", time.Since(t0), grace)
	}
}

// A round checks what is due, not the whole store: once every content is
// settled, a round surveys only its slice of the recheck period; a holder
// no longer alive makes nothing due while it is in grace (it still
// counts), and every content it held is checked at once when its
// repair_after has passed.
func TestRoundChecksOnlyWhatIsDue(t *testing.T) {
	const n, slices = 60, 10
	const grace = 3 * time.Second
	interval := 100 * time.Millisecond
	nodes := testSwarm(t, swarmConfig{n: 3, interval: interval, recheck: slices * interval,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: grace}})
	a, down := nodes[0], nodes[2]
	putAll(t, n, nodes...)
	for _, nd := range nodes {
		nd.start(t)
	}
	connectAll(t, nodes)
	swarmtest.WaitFor(t, 20*time.Second, "every content settled", func() bool {
		s := a.r.Summary()
		return s.AtTarget == n && s.Checked < n/2
	})
	checked := 0
	for range slices {
		a.rounds(t, 1, 10*time.Second)
		s := a.r.Summary()
		if s.Contents != n || s.AtTarget != n {
			t.Fatalf("a settled round lost count: %+v", s)
		}
		checked += s.Checked
	}
	// Each content once per recheck period, give or take the rounds that
	// straddle the window.
	if checked < n/2 || checked > 2*n {
		t.Fatalf("%d checks in one recheck period of %d settled contents, want about %d", checked, n, n)
	}

	down.stopNode()
	if err := down.h.Host.Close(); err != nil {
		t.Fatal(err)
	}
	gone := time.Now()
	// Within its grace: only the slices are checked.
	for range 5 {
		a.rounds(t, 1, 10*time.Second)
		if time.Since(gone) >= grace {
			break
		}
		if s := a.r.Summary(); s.Checked >= n/2 || s.Placements != 0 || s.AtTarget != n {
			t.Fatalf("a holder gone within repair_after: %+v", s)
		}
	}
	swarmtest.WaitFor(t, 20*time.Second, "every content of the member gone checked in one round", func() bool {
		return a.r.Summary().Checked == n
	})
	if time.Since(gone) < grace {
		t.Fatalf("the contents of a member gone %v ago were checked before its repair_after (%v)", time.Since(gone), grace)
	}
	if s := a.r.Summary(); s.BelowTarget != n {
		t.Fatalf("a holder gone past repair_after: %+v, want every content below target", s)
	}
}

// The repair state is kept across a restart (docs/REPLICATION.md "Repair
// state file"): a replicator started again on the same store knows who
// holds what, so its first round surveys only the slice whose turn it is,
// not every content, and places nothing.
func TestRestartKeepsRepairState(t *testing.T) {
	const n, slices = 60, 10
	interval := 100 * time.Millisecond
	nodes := testSwarm(t, swarmConfig{n: 3, interval: interval, recheck: slices * interval, durable: true,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: time.Hour}})
	a := nodes[0]
	putAll(t, n, nodes...)
	for _, nd := range nodes {
		nd.start(t)
	}
	connectAll(t, nodes)
	swarmtest.WaitFor(t, 20*time.Second, "every content settled", func() bool {
		s := a.r.Summary()
		return s.AtTarget == n && s.Checked < n/2
	})
	a.restartReplicator()
	a.rounds(t, 1, 10*time.Second)
	s := a.r.Summary()
	if s.Checked >= n/2 || s.Contents != n || s.AtTarget != n || s.Placements != 0 {
		t.Fatalf("first round after a restart: %+v; want about %d of %d checked, all at target, no placement", s, n/slices, n)
	}
	t.Logf("first round after a restart checked %d of %d contents", s.Checked, n)

	// Without the file the same restart surveys everything: the test can fail.
	a.opts.LoadRepairState = func() ([]byte, error) { return nil, nil }
	a.restartReplicator()
	a.rounds(t, 1, 10*time.Second)
	if s := a.r.Summary(); s.Checked != n {
		t.Fatalf("a restart without the kept state checked %d of %d", s.Checked, n)
	}
}

// A put of a content removed earlier stores it before its seeding clears
// the removal: the repair round must not delete it in between (git annex
// testremote stores, removes and stores the same chunks again and saw
// "seeding: reading manifest: not found"). Without a put in flight, a
// removed content stored here is deleted by the next round.
func TestRoundLeavesRemovedContentWhilePutting(t *testing.T) {
	nodes := testSwarm(t, swarmConfig{n: 2, interval: 50 * time.Millisecond,
		rep: rules.Replication{Copies: 2, CopiesMin: 1, RepairAfter: time.Minute}})
	a, b := nodes[0], nodes[1]
	for _, nd := range nodes {
		nd.start(t)
	}
	connectAll(t, nodes)
	root := putAll(t, 1, a)[0]
	if err := a.r.Remove(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	swarmtest.WaitFor(t, 10*time.Second, "the removal applied on b", func() bool { return !b.holds(root) })

	// Stored again with no put in flight: the removal still stands.
	putAll(t, 1, a)
	swarmtest.WaitFor(t, 10*time.Second, "the round deleting a removed content", func() bool { return !a.holds(root) })

	// Stored again by a put: kept through rounds until its seeding.
	end := a.r.BeginPut()
	putAll(t, 1, a)
	a.rounds(t, 3, 10*time.Second)
	if !a.holds(root) {
		t.Fatal("a round deleted the content a put in flight had just stored")
	}
	if _, err := a.r.Seed(t.Context(), root, nil); err != nil {
		t.Fatalf("seeding the content put again: %v", err)
	}
	end()
	a.rounds(t, 3, 10*time.Second)
	if !a.holds(root) {
		t.Fatal("the content put again was deleted after its seeding cleared the removal")
	}
	swarmtest.WaitFor(t, 10*time.Second, "the content put again placed on b", func() bool { return b.holds(root) })
}
