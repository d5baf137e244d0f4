package test

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestScale is the measurement of issue 17, outside the default run: set
// ANNEX_SWARM_SCALE to the number of contents (4 KiB each, put in bulk
// through the first member's PutMany: the store's real write path and
// seeding). ANNEX_SWARM_SCALE_MEMBERS (default 3) storage members run as
// real daemon processes with copies=3, copies_min=2, repair_after=1m,
// --repair-interval ANNEX_SWARM_SCALE_INTERVAL (default 30s). Once every
// content is at target it measures, over ANNEX_SWARM_SCALE_MINUTES
// (default 2) of idling: CPU time and RSS of each daemon, the latency of
// status and where, and the repair placements started; then it restarts
// the last member, counts the contents its first round surveys (it starts
// from its kept repair state: fewer than half, or the test fails) and the
// placements started over the same time; last, as the same-run baseline,
// it restarts that member once more without its repair state file and
// logs what its first round surveys. Last it times a rules push at rest
// and three puts of 1 MiB: all members well, one frozen, one slow
// (putsWithAFaultyMember). A placement while every content is at target,
// or a put that fails, fails the test; the figures are logged
// (docs/PERFORMANCE.md "Scale").
//
// With ANNEX_SWARM_SCALE_PREBUILT=1 the contents are not put through a
// daemon but written into every member's store before the swarm forms,
// with the daemons stopped (prebuild): faster for 100,000 contents and
// more; the members then join holding everything, with no repair state
// kept (every content surveyed once). ANNEX_SWARM_SCALE_LOG sets the
// daemons' log level (info).
//
//	ANNEX_SWARM_SCALE=10000 go test ./test -run TestScale -v -timeout 60m
func TestScale(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("ANNEX_SWARM_SCALE"))
	if n <= 0 {
		t.Skip("set ANNEX_SWARM_SCALE=N (contents) to run the scale measurement")
	}
	members := envInt("ANNEX_SWARM_SCALE_MEMBERS", 3)
	idle := time.Duration(envInt("ANNEX_SWARM_SCALE_MINUTES", 2)) * time.Minute
	interval := os.Getenv("ANNEX_SWARM_SCALE_INTERVAL")
	if interval == "" {
		interval = "30s"
	}
	logLevel := os.Getenv("ANNEX_SWARM_SCALE_LOG")
	if logLevel == "" {
		logLevel = "info"
	}
	var nodes []*harness.Node
	for i := range members {
		nodes = append(nodes, harness.NewNode(t, bin, fmt.Sprintf("s%d", i), harness.Options{
			Args: []string{"--log-level", logLevel, "--sync-interval", "10s", "--repair-interval", interval}}))
	}
	// Prebuilt stores are written before the swarm forms: the daemons
	// listen on new ports after a restart, and the definition names the
	// addresses they had when it was signed.
	prebuilt := os.Getenv("ANNEX_SWARM_SCALE_PREBUILT") == "1"
	var root string
	if prebuilt {
		start := time.Now()
		root = prebuild(t, nodes, n, min(3, members))
		t.Logf("prebuilt %d contents of 4 KiB in every member's store: %v (%.0f contents/s per store)", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
	}
	c := harness.Of(bin, nodes...)
	s := c.FormSwarm(t, harness.SwarmOptions{Copies: min(3, members), CopiesMin: min(2, members)})
	took := pushTimed(t, c, s, "repair_after=1m", true)
	t.Logf("%d members: rules push to all and connected in %v", members, took.Round(10*time.Millisecond))

	start := time.Now()
	if !prebuilt {
		root = putBulk(t, nodes[0], n)
		t.Logf("put %d contents of 4 KiB in bulk: %v (%.0f contents/s)", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
	}
	// Each member counts what it holds: every content n times in all
	// with 3 members, copies times over the members with more.
	copies := min(3, members)
	harness.WaitFor(t, 30*time.Minute, "every content at target on every member", func() bool {
		held := 0
		for _, a := range nodes {
			r := a.StatusJSON().Replication
			if r == nil || r.AtTarget != r.Contents {
				return false
			}
			held += r.Contents
		}
		return held == n*copies
	})
	t.Logf("all at target %v after the put began", time.Since(start).Round(time.Second))
	// The first announcement of everything held comes a minute after a
	// start and then every 12 hours (docs/EXCHANGE.md "Discovery"): it is
	// measured on its own, and the idle figures start after it.
	cpuA := cpuTimes(t, nodes)
	announced := time.Now()
	harness.WaitFor(t, 30*time.Minute, "the first announcement of every content on every member", func() bool {
		for _, a := range nodes {
			if b, err := os.ReadFile(a.LogPath()); err != nil || !bytes.Contains(b, []byte(`msg="announced content on the swarm DHT"`)) {
				return false
			}
		}
		return true
	})
	cpuB := cpuTimes(t, nodes)
	for i, a := range nodes {
		t.Logf("first announcement: %s used %v of CPU from all at target to its end (%v)", a.Name, cpuB[i]-cpuA[i], time.Since(announced).Round(time.Second))
	}

	observe := func(what string) {
		before := placements(nodes)
		cpu0 := cpuTimes(t, nodes)
		time.Sleep(idle) // measuring idle CPU over a span is the point; no condition to wait on
		cpu1 := cpuTimes(t, nodes)
		after := placements(nodes)
		for i, a := range nodes {
			perMin := (cpu1[i] - cpu0[i]).Seconds() / idle.Minutes()
			t.Logf("%s: %s (pid %d) idle CPU %v in %v = %.2f s/min (%.2f %% of a core), %v, placements %d",
				what, a.Name, a.Pid(), cpu1[i]-cpu0[i], idle, perMin, perMin/60*100, rssMiB(t, a), after[i]-before[i])
		}
		st, wh := latencies(t, nodes[0], root)
		t.Logf("%s: status median %v (max %v), where median %v (max %v)", what, st[len(st)/2], st[len(st)-1], wh[len(wh)/2], wh[len(wh)-1])
		for i := range nodes {
			if after[i] != before[i] {
				t.Errorf("%s: %s started %d placements with every content at target", what, nodes[i].Name, after[i]-before[i])
			}
		}
	}
	observe("idle")

	last := nodes[len(nodes)-1]
	if err := last.Stop(); err != nil {
		t.Fatal(err)
	}
	// The first round after the restart starts from the kept repair state
	// (docs/REPLICATION.md "Repair state file"): it surveys only what is
	// due, not every content again.
	first := firstRound(t, last, n)
	if first.Checked >= n/2 {
		t.Errorf("the first round after a restart surveyed %d of %d contents: the kept state was not used", first.Checked, n)
	}
	observe("after a restart of " + last.Name)

	// The same-run baseline: a restart without the kept state (the file
	// removed, as before it existed) surveys every content.
	base := placements(nodes)
	if err := last.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(last.Home, "repair")); err != nil {
		t.Fatalf("removing the repair state: %v", err)
	}
	firstRound(t, last, n)
	t.Logf("repair placements started per member (the restarted one counts from its start): before %v, after that first round %v", base, placements(nodes))

	// A rules push to a swarm at rest (the push above met daemons just
	// started): a new version signed and pushed from the first member,
	// timed until every member has adopted it.
	took = pushTimed(t, c, s, "repair_after=2m", false)
	t.Logf("%d members at rest: rules push to all in %v", members, took.Round(10*time.Millisecond))

	putsWithAFaultyMember(t, nodes)
}

// putsWithAFaultyMember puts a 1 MiB content through the first member's
// CLI three times, with every other member holding everything put
// before: with all members well (the same-run baseline), with the last
// member frozen (SIGSTOP: its connections stay open and nothing is
// answered) and with it slow (stopped 400 ms of every 500 ms). Each put
// must end with success, which put reports once copies_min storage members
// hold verified copies; the times are logged (docs/PERFORMANCE.md "Scale").
func putsWithAFaultyMember(t *testing.T, nodes []*harness.Node) {
	t.Helper()
	up, last := nodes[0], nodes[len(nodes)-1]
	dir := t.TempDir()
	put := func(what string, seed uint64) {
		t.Helper()
		src := filepath.Join(dir, what)
		writeRandomFile(t, src, 1<<20, seed)
		start := time.Now()
		r := up.CLIWithin(5*time.Minute, "put", src)
		took := time.Since(start)
		// put returns once copies_min storage members hold verified
		// copies, or fails with a reason.
		if r.Code != 0 {
			t.Errorf("put with %s: exit %d after %v: %s", what, r.Code, took.Round(time.Millisecond), strings.TrimSpace(r.Stderr))
			return
		}
		t.Logf("put of 1 MiB with %s: %v to copies_min", what, took.Round(time.Millisecond))
	}
	put("every member well", 101)

	pid := last.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("freezing %s: %v", last.Name, err)
	}
	put(last.Name+" frozen", 102)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatalf("thawing %s: %v", last.Name, err)
	}

	// Slow: a goroutine stops and continues it, bounded by the put.
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if syscall.Kill(pid, syscall.SIGSTOP) != nil {
				return
			}
			select {
			case <-done:
				syscall.Kill(pid, syscall.SIGCONT)
				return
			case <-time.After(400 * time.Millisecond):
			}
			if syscall.Kill(pid, syscall.SIGCONT) != nil {
				return
			}
			select {
			case <-done:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	put(last.Name+" slow (running 100 ms of every 500 ms)", 103)
	close(done)
	wg.Wait()
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Errorf("leaving %s running: %v", last.Name, err)
	}
}

// pushTimed signs the rules of s with assignment, pushes them from the
// first member and returns how long until every member had adopted them
// (and, with connected, the first member was connected to every other),
// as the test's polling saw it. It logs, besides, the span from the push to
// the last member's "definition adopted" line (the daemons' own clocks,
// without the polling's granularity).
func pushTimed(t *testing.T, c *harness.Cluster, s *harness.Swarm, assignment string, connected bool) time.Duration {
	t.Helper()
	nodes := c.Nodes
	c.MustRun(t, "rules", "set", s.Rules, "--key", s.Key, assignment)
	pushed := time.Now()
	nodes[0].MustCLI("rules", "push", s.Rules)
	want := swarmVersion(nodes[0])
	harness.WaitFor(t, 2*time.Minute, "the new version on every member", func() bool {
		for _, a := range nodes {
			if swarmVersion(a) != want {
				return false
			}
		}
		for _, a := range nodes[1:] {
			if connected && !connectedTo(nodes[0], a.PeerID) {
				return false
			}
		}
		return true
	})
	took := time.Since(pushed)
	if last, ok := lastAdoption(nodes, want); ok {
		t.Logf("version %d: the last member adopted it %v after the push (its log), seen by polling after %v",
			want, last.Sub(pushed).Round(time.Millisecond), took.Round(time.Millisecond))
	}
	return took
}

// adoptedLine matches a daemon's log line for an adopted definition.
var adoptedLine = regexp.MustCompile(`^time=(\S+) .*msg="definition adopted".* version=(\d+)`)

// lastAdoption returns the latest time at which a member of nodes logged
// adopting version; ok is false unless every member logged it.
func lastAdoption(nodes []*harness.Node, version uint64) (last time.Time, ok bool) {
	for _, a := range nodes {
		b, err := os.ReadFile(a.LogPath())
		if err != nil {
			return time.Time{}, false
		}
		var at time.Time
		for _, l := range strings.Split(string(b), "\n") {
			m := adoptedLine.FindStringSubmatch(l)
			if m == nil || m[2] != strconv.FormatUint(version, 10) {
				continue
			}
			if at, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
				return time.Time{}, false
			}
		}
		if at.IsZero() {
			return time.Time{}, false
		}
		if at.After(last) {
			last = at
		}
	}
	return last, true
}

// TestRulesPushScale measures, outside the default run, how fast a rules
// push reaches every member of a swarm at rest: set
// ANNEX_SWARM_PUSH_MEMBERS to the number of members (real daemons, no
// contents). It pushes ANNEX_SWARM_PUSH_TIMES (default 5) versions from
// the first member, 15 s apart, and logs each (docs/PERFORMANCE.md).
func TestRulesPushScale(t *testing.T) {
	members := envInt("ANNEX_SWARM_PUSH_MEMBERS", 0)
	if members == 0 {
		t.Skip("set ANNEX_SWARM_PUSH_MEMBERS=N to measure a rules push to N members")
	}
	c := harness.New(t, bin, members, harness.Options{Args: []string{"--sync-interval", "10s"}})
	s := c.FormSwarm(t, harness.SwarmOptions{Copies: 3, CopiesMin: 2})
	t.Logf("%d members: first push, all connected after %v", members, pushTimed(t, c, s, "repair_after=1m", true).Round(time.Millisecond))
	for i := range envInt("ANNEX_SWARM_PUSH_TIMES", 5) {
		time.Sleep(15 * time.Second) // a swarm at rest is what is measured
		took := pushTimed(t, c, s, fmt.Sprintf("repair_after=%dm", i+2), false)
		t.Logf("%d members at rest: push %d reached all in %v", members, i+1, took.Round(time.Millisecond))
	}
}

// firstRound starts nd (stopped) and waits for its first repair round;
// it logs and returns what that round found.
func firstRound(t *testing.T, nd *harness.Node, n int) *client.ReplicationStatus {
	t.Helper()
	restarted := time.Now()
	if err := nd.Start(); err != nil {
		t.Fatal(err)
	}
	var first *client.ReplicationStatus
	harness.WaitFor(t, 5*time.Minute, "the first repair round after the restart", func() bool {
		first = nd.StatusJSON().Replication
		return first != nil && first.LastRound != ""
	})
	_, statErr := os.Stat(filepath.Join(nd.Home, "repair"))
	t.Logf("first round after a restart of %s (%v after the start, repair state file present at the end: %v): checked %d of %d contents, at target %d",
		nd.Name, time.Since(restarted).Round(time.Second), statErr == nil, first.Checked, n, first.AtTarget)
	return first
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// prebuild stops the daemons of nodes and writes n contents of 4 KiB into
// their stores with the store's own write paths, as if every content had
// been put on the first member and placed on copies-1 others: into the
// first member's store through Put (a local put), into the first copies-1
// of the others in placement order through PutContent (what an inline
// placement of a small content stores). It starts the daemons again and
// returns the first content's CID.
func prebuild(t *testing.T, nodes []*harness.Node, n, copies int) (first string) {
	for _, a := range nodes {
		if err := a.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	// The placement order of the swarm (docs/REPLICATION.md "Placement"):
	// the other members by rendezvous weight of (root, peer ID).
	ids := make([][]byte, len(nodes))
	for i, a := range nodes {
		id, err := peer.Decode(a.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = []byte(id)
	}
	stores := make([]*chunk.Store, len(nodes))
	for i, a := range nodes {
		st, err := chunk.Open(filepath.Join(a.Home, "store"), chunk.Options{})
		if err != nil {
			t.Fatalf("opening %s's store: %v", a.Name, err)
		}
		stores[i] = st
	}
	ctx := context.Background()
	// place writes content i: a local put on the first member, an inline
	// placement's write on the others.
	place := func(i int, data []byte) (cid.Cid, error) {
		copy(data, fmt.Sprintf("scale content %d\n", i))
		root, m, err := stores[0].Put(ctx, bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			return cid.Undef, fmt.Errorf("put %d: %w", i, err)
		}
		items := make([]chunk.ChunkData, len(m.Chunks))
		for j, c := range m.Chunks {
			items[j] = chunk.ChunkData{CID: c.CID, Data: data[c.Offset : c.Offset+int64(c.Length)]}
		}
		for _, j := range holdersOf(root, ids, copies-1) {
			if _, err := stores[j].PutContent(ctx, m, items); err != nil {
				return cid.Undef, fmt.Errorf("placing %d: %w", i, err)
			}
		}
		return root, nil
	}
	root, err := place(0, make([]byte, 4096))
	if err != nil {
		t.Fatal(err)
	}
	const workers = 16
	work := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			data := make([]byte, 4096)
			for i := range work {
				if _, err := place(i, data); err != nil {
					errs <- err
					return
				}
			}
		})
	}
feed:
	for i := 1; i < n; i++ {
		select {
		case work <- i:
		case err := <-errs:
			t.Error(err)
			break feed
		}
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs { // failures after the last content was handed out
		t.Error(err)
	}
	for i, st := range stores {
		if err := st.Close(); err != nil {
			t.Errorf("closing %s's store: %v", nodes[i].Name, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	for _, a := range nodes {
		if err := a.Start(); err != nil {
			t.Fatal(err)
		}
	}
	return root.String()
}

// holdersOf returns the indexes of the first k of ids[1:] (binary peer
// IDs) in the rendezvous order of root: the first 8 bytes of SHA-256(binary
// CID ‖ binary peer ID), highest first.
func holdersOf(root cid.Cid, ids [][]byte, k int) []int {
	type w struct {
		i int
		v uint64
	}
	var ws []w
	for i, id := range ids[1:] {
		h := sha256.Sum256(append(root.Bytes(), id...))
		ws = append(ws, w{i + 1, binary.BigEndian.Uint64(h[:8])})
	}
	slices.SortFunc(ws, func(a, b w) int { return cmp.Compare(b.v, a.v) })
	out := make([]int, 0, k)
	for _, x := range ws[:min(k, len(ws))] {
		out = append(out, x.i)
	}
	return out
}

// putBulk writes n files of 4 KiB and puts them through nd in requests
// of client.MaxPutMany files.
func putBulk(t *testing.T, nd *harness.Node, n int) (first string) {
	dir := t.TempDir()
	var batch []client.PutRequest
	flush := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
		defer cancel()
		res, err := nd.Client().PutMany(ctx, client.PutManyRequest{Files: batch}, nil)
		if err != nil {
			t.Fatalf("put: %v\n%s", err, nd.LogTail(30))
		}
		for _, f := range res.Files {
			if f.Error != "" {
				t.Fatalf("put %s: %s", f.Path, f.Error)
			}
			if first == "" {
				first = f.CID
			}
		}
		for _, f := range batch {
			_ = os.Remove(f.Path)
		}
		batch = batch[:0]
	}
	data := make([]byte, 4096)
	for i := range n {
		copy(data, fmt.Sprintf("scale content %d\n", i))
		path := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		batch = append(batch, client.PutRequest{Path: path})
		if len(batch) == client.MaxPutMany {
			flush()
		}
	}
	if len(batch) > 0 {
		flush()
	}
	return first
}

// placements returns the repair placements each daemon started.
func placements(nodes []*harness.Node) []uint64 {
	out := make([]uint64, len(nodes))
	for i, a := range nodes {
		if r := a.StatusJSON().Replication; r != nil {
			out[i] = r.Placements
		}
	}
	return out
}

// cpuTimes reads each daemon's user+system CPU time from /proc.
func cpuTimes(t *testing.T, nodes []*harness.Node) []time.Duration {
	out := make([]time.Duration, len(nodes))
	for i, a := range nodes {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", a.Pid()))
		if err != nil {
			t.Fatal(err)
		}
		// Fields after the command name in parentheses: utime and stime
		// are the 12th and 13th (clock ticks, 100 per second).
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		u, _ := strconv.ParseInt(f[11], 10, 64)
		s, _ := strconv.ParseInt(f[12], 10, 64)
		out[i] = time.Duration(u+s) * 10 * time.Millisecond
	}
	return out
}

// rss is a daemon's resident set, in MiB: all of it (VmRSS), its
// anonymous memory (RssAnon: the Go heap and stacks) and its file pages
// (RssFile: the binary and the mapped index files).
type rss struct{ total, anon, file int64 }

func (r rss) String() string {
	return fmt.Sprintf("RSS %d MiB (anonymous %d, file %d)", r.total, r.anon, r.file)
}

// rssMiB reads a daemon's resident set sizes.
func rssMiB(t *testing.T, a *harness.Node) rss {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	var r rss
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var dst *int64
		switch f[0] {
		case "VmRSS:":
			dst = &r.total
		case "RssAnon:":
			dst = &r.anon
		case "RssFile:":
			dst = &r.file
		default:
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			t.Fatalf("%s: reading %q of /proc/%d/status: %v", a.Name, line, a.Pid(), err)
		}
		*dst = kb >> 10
	}
	return r
}

// latencies times 20 status and 20 where (of root) requests on a, sorted.
func latencies(t *testing.T, a *harness.Node, root string) (status, where []time.Duration) {
	ctx := context.Background()
	cl := a.Client()
	for range 20 {
		t0 := time.Now()
		if _, err := cl.Status(ctx); err != nil {
			t.Fatal(err)
		}
		status = append(status, time.Since(t0))
	}
	for range 20 {
		t0 := time.Now()
		if _, err := cl.Where(ctx, root); err != nil {
			t.Fatal(err)
		}
		where = append(where, time.Since(t0))
	}
	slices.Sort(status)
	slices.Sort(where)
	return status, where
}
