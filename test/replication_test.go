package test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// replArgs make members sync every second and run a repair round every second.
var replArgs = []string{"--sync-interval", "1s", "--repair-interval", "1s"}

// replSwarm is a swarm of storage members (and a client as the last node
// when withClient) with copies and copies_min set, and repair_after.
type replSwarm struct {
	c      *harness.Cluster
	s      *harness.Swarm
	client *harness.Node
}

// formRepl starts n storage members (plus a client member when withClient),
// forms the swarm and sets repair_after, then waits until every member has
// the final version and all are connected.
func formRepl(t *testing.T, n int, withClient bool, o harness.SwarmOptions, repairAfter string, cfg map[int]string) *replSwarm {
	t.Helper()
	total := n
	if withClient {
		total++
	}
	var nodes []*harness.Node
	for i := range total {
		name := fmt.Sprintf("s%d", i)
		if withClient && i == n {
			name = "laptop"
		}
		nodes = append(nodes, harness.NewNode(t, bin, name, harness.Options{Args: replArgs, Config: cfg[i]}))
	}
	c := harness.Of(bin, nodes...)
	if withClient {
		if o.Roles == nil {
			o.Roles = map[int]string{}
		}
		o.Roles[n] = "client"
	}
	s := c.FormSwarm(t, o)
	c.MustRun(t, "rules", "set", s.Rules, "--key", s.Key, "repair_after="+repairAfter)
	c.Nodes[0].MustCLI("rules", "push", s.Rules)
	want := swarmVersion(c.Nodes[0])
	harness.WaitFor(t, 60*time.Second, "final version on every member, all connected", func() bool {
		for _, a := range c.Nodes {
			if swarmVersion(a) != want {
				return false
			}
			for _, b := range c.Nodes {
				if a != b && !connectedTo(a, b.PeerID) {
					return false
				}
			}
		}
		return true
	})
	rs := &replSwarm{c: c, s: s}
	if withClient {
		rs.client = c.Nodes[n]
	}
	return rs
}

// where runs `where CID --json` on n.
func where(t *testing.T, n *harness.Node, root string) client.WhereResult {
	t.Helper()
	var w client.WhereResult
	if err := json.Unmarshal([]byte(n.MustCLI("where", root, "--json")), &w); err != nil {
		t.Fatalf("decoding where: %v", err)
	}
	return w
}

// holderNames returns the sorted names of w's holders.
func holderNames(w client.WhereResult) []string {
	var out []string
	for _, h := range w.Holders {
		out = append(out, h.Name)
	}
	slices.Sort(out)
	return out
}

func waitCopies(t *testing.T, n *harness.Node, root string, want int, timeout time.Duration) client.WhereResult {
	t.Helper()
	var w client.WhereResult
	harness.WaitFor(t, timeout, fmt.Sprintf("%d copies of %s", want, root), func() bool {
		w = where(t, n, root)
		return w.Copies >= want
	})
	return w
}

func TestReplicationSeedsFromClient(t *testing.T) {
	rs := formRepl(t, 5, true, harness.SwarmOptions{Copies: 4, CopiesMin: 2}, "1h", nil)
	laptop := rs.client
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 48 << 20
	sum := writeRandomFile(t, src, size, 21)

	sentBefore := laptop.StatusJSON().BytesSent
	var res client.PutResult
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := laptop.Client().Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("put: %v\n%s", err, laptop.LogTail(40))
	}
	if res.Copies < 2 {
		t.Fatalf("put returned with %d copies, copies_min is 2", res.Copies)
	}
	// When put returns, copies_min storage members already hold it.
	if w := where(t, laptop, res.CID); w.Copies < 2 || w.Target != 4 {
		t.Fatalf("right after put: %+v", w)
	}
	w := waitCopies(t, laptop, res.CID, 4, 2*time.Minute)
	if w.Copies != 4 || len(w.Holders) != 4 {
		t.Fatalf("where = %+v, want exactly 4 holders", w)
	}
	for _, h := range w.Holders {
		if h.PeerID == laptop.PeerID {
			t.Fatal("the client member is counted as a holder")
		}
	}
	sent := laptop.StatusJSON().BytesSent - sentBefore
	t.Logf("uploader sent %d bytes for a %d-byte file (%.3f×); holders %v", sent, size, float64(sent)/size, holderNames(w))
	if sent > size*115/100 {
		t.Errorf("uploader sent %d bytes, more than 1.15 × %d", sent, size)
	}
	// Every holder has the same bytes.
	h := memberByName(rs.c, w.Holders[3].Name)
	out := filepath.Join(dir, "out")
	h.MustCLI("get", res.CID, "-o", out)
	if fileSHA256(t, out) != sum {
		t.Fatal("a holder's copy differs")
	}
	// The laptop, a client member, keeps nothing once the put ended
	// (docs/STORE.md "What a client member keeps"): a holder's summary
	// counts the content.
	harness.WaitFor(t, 30*time.Second, "a holder's status summary shows the content at target", func() bool {
		r := h.StatusJSON().Replication
		return r != nil && r.Contents == 1 && r.AtTarget == 1
	})
}

func memberByName(c *harness.Cluster, name string) *harness.Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// otherHolder returns the first holder in w that is not up.
func otherHolder(t *testing.T, c *harness.Cluster, w client.WhereResult, up *harness.Node) *harness.Node {
	t.Helper()
	for _, h := range w.Holders {
		if h.PeerID != up.PeerID {
			return memberByName(c, h.Name)
		}
	}
	t.Fatalf("no holder besides %s: %+v", up.Name, w)
	return nil
}

// putMany puts files concurrently (bounded) through the client and returns
// their CIDs.
func putMany(t *testing.T, n *harness.Node, paths []string, parallel int) []string {
	t.Helper()
	out := make([]string, len(paths))
	errs := make([]error, len(paths))
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i, p := range paths {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			r, err := n.Client().Put(ctx, client.PutRequest{Path: p}, nil)
			out[i], errs[i] = r.CID, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("put %s: %v", paths[i], err)
		}
	}
	return out
}

func TestReplicationRepairsAfterKill(t *testing.T) {
	rs := formRepl(t, 5, false, harness.SwarmOptions{Copies: 3, CopiesMin: 2}, "3s", nil)
	up := rs.c.Nodes[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandomFile(t, src, 24<<20, 22)
	root := harness.LastLine(up.MustCLI("put", src))
	w := waitCopies(t, up, root, 3, time.Minute)

	victim := otherHolder(t, rs.c, w, up)
	victim.Kill()
	killed := time.Now()
	harness.WaitFor(t, 90*time.Second, "3 live copies without the killed holder", func() bool {
		w = where(t, up, root)
		return w.Copies >= 3 && !slices.Contains(holderNames(w), victim.Name)
	})
	t.Logf("target restored %v after kill -9 of %s (repair_after 3s): holders %v", time.Since(killed).Round(100*time.Millisecond), victim.Name, holderNames(w))
	for _, h := range w.Holders {
		n := memberByName(rs.c, h.Name)
		out := filepath.Join(dir, "out-"+h.Name)
		n.MustCLI("get", root, "-o", out)
		if fileSHA256(t, out) != sum {
			t.Fatalf("copy on %s differs", h.Name)
		}
	}
}

func TestReplicationRemoveReachesOfflineHolder(t *testing.T) {
	rs := formRepl(t, 4, false, harness.SwarmOptions{Copies: 3, CopiesMin: 2}, "1h", nil)
	up := rs.c.Nodes[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	writeRandomFile(t, src, 4<<20, 23)
	root := harness.LastLine(up.MustCLI("put", src))
	w := waitCopies(t, up, root, 3, time.Minute)

	off := otherHolder(t, rs.c, w, up)
	if err := off.Stop(); err != nil {
		t.Fatal(err)
	}
	up.MustCLI("rm", root)
	harness.WaitFor(t, 30*time.Second, "no live member holds the removed content", func() bool {
		return where(t, up, root).Copies == 0
	})
	if err := off.Start(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 60*time.Second, "the returning holder removes it", func() bool {
		st := off.StatusJSON()
		return st.Store.Manifests == 0 && st.Replication != nil && st.Replication.Removed == 1
	})
	if w := where(t, up, root); w.Copies != 0 {
		t.Fatalf("removed content came back: %+v", w)
	}
	// The record survives a restart (HOME/removals, appended to).
	restart(t, up)
	if r := up.StatusJSON().Replication; r == nil || r.Removed != 1 {
		t.Fatalf("after a restart the uploader keeps %+v removal records, want 1", r)
	}

	// A later put of the same content brings it back.
	if again := harness.LastLine(up.MustCLI("put", src)); again != root {
		t.Fatalf("same file, different CID: %s", again)
	}
	waitCopies(t, up, root, 3, time.Minute)
	harness.WaitFor(t, 30*time.Second, "the restore reaches the returning member", func() bool {
		r := off.StatusJSON().Replication
		return r != nil && r.Removed == 0
	})
	// The restore, appended after the removal, wins after a restart too.
	restart(t, off)
	if r := off.StatusJSON().Replication; r == nil || r.Removed != 0 {
		t.Fatalf("after a restart the content counts as removed again: %+v", r)
	}
}

// TestReplicationPutAgainCarriesRestore: a small content put again after
// rm carries its Restore record inside the placement (docs/REPLICATION.md
// "Restore carried in the placement"). The new holder keeps the record
// durably before it answers Done, so a kill -9 right after the put leaves
// it holding the content, with no removal counted, after a restart; the
// member that got no copy gets the record after the put.
func TestReplicationPutAgainCarriesRestore(t *testing.T) {
	rs := formRepl(t, 3, false, harness.SwarmOptions{Copies: 2, CopiesMin: 2}, "1h", nil)
	up := rs.c.Nodes[0]
	src := filepath.Join(t.TempDir(), "src")
	writeRandomFile(t, src, 8<<10, 41)
	root := harness.LastLine(up.MustCLI("put", src))
	waitCopies(t, up, root, 2, time.Minute)
	up.MustCLI("rm", root)
	harness.WaitFor(t, 30*time.Second, "no member holds the removed content", func() bool {
		return where(t, up, root).Copies == 0
	})
	if again := harness.LastLine(up.MustCLI("put", src)); again != root {
		t.Fatalf("same file, different CID: %s", again)
	}
	w := where(t, up, root)
	if w.Copies != 2 {
		t.Fatalf("put again returned with %d copies: %+v", w.Copies, w)
	}
	h := otherHolder(t, rs.c, w, up)
	h.Node.Kill()
	if err := h.Start(); err != nil {
		t.Fatal(err)
	}
	st := h.StatusJSON()
	if st.Replication == nil || st.Replication.Removed != 0 || st.Store.Manifests != 1 {
		t.Fatalf("the new holder after kill -9: %d manifests, replication %+v; want the content and no removal", st.Store.Manifests, st.Replication)
	}
	if w := where(t, up, root); w.Copies != 2 {
		t.Fatalf("after the holder's restart: %d copies, want 2", w.Copies)
	}
	for _, n := range rs.c.Nodes {
		if n == up || n == h {
			continue
		}
		harness.WaitFor(t, 30*time.Second, "the restore reaches the member without a copy", func() bool {
			r := n.StatusJSON().Replication
			return r != nil && r.Removed == 0
		})
	}
}

// restart stops n's daemon and starts it again.
func restart(t *testing.T, n *harness.Node) {
	t.Helper()
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
}

func TestReplicationLeaveKeepsTarget(t *testing.T) {
	rs := formRepl(t, 5, false, harness.SwarmOptions{Copies: 3, CopiesMin: 2}, "1h", nil)
	up := rs.c.Nodes[0]
	dir := t.TempDir()
	var roots []string
	for i := range 4 {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i))
		writeRandomFile(t, src, 6<<20, uint64(30+i))
		roots = append(roots, harness.LastLine(up.MustCLI("put", src)))
	}
	// The leaver: the member other than the uploader holding most of them.
	count := map[string]int{}
	for _, root := range roots {
		for _, h := range waitCopies(t, up, root, 3, time.Minute).Holders {
			if h.PeerID != up.PeerID {
				count[h.Name]++
			}
		}
	}
	var leaver *harness.Node
	best := 0
	for name, n := range count {
		if n > best {
			leaver, best = memberByName(rs.c, name), n
		}
	}

	// Poll where for every content during and after the leave.
	stop := make(chan struct{})
	var mu sync.Mutex
	low := map[string]int{}
	polls := 0
	var polled sync.WaitGroup
	polled.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, root := range roots {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				w, err := up.Client().Where(ctx, root)
				cancel()
				if err != nil {
					continue
				}
				mu.Lock()
				if v, ok := low[root]; !ok || w.Copies < v {
					low[root] = w.Copies
				}
				polls++
				mu.Unlock()
			}
		}
	})
	leaver.MustCLI("leave")
	harness.WaitFor(t, 30*time.Second, "the leaver is gone from the uploader's view", func() bool {
		return !connectedTo(up, leaver.PeerID)
	})
	after := 0
	harness.WaitFor(t, 30*time.Second, "a few polls after the leave", func() bool {
		mu.Lock()
		defer mu.Unlock()
		after++
		return after > 1 && polls > 8*len(roots)
	})
	close(stop)
	polled.Wait()
	for _, root := range roots {
		if low[root] < 3 {
			t.Errorf("%s dropped to %d copies during the leave", root, low[root])
		}
		w := where(t, up, root)
		if w.Copies < 3 || slices.Contains(holderNames(w), leaver.Name) {
			t.Errorf("after the leave: %+v", w)
		}
	}
	t.Logf("leaver %s held %d of %d contents; %d where polls", leaver.Name, best, len(roots), polls)
}

func TestReplicationManySmallFiles(t *testing.T) {
	rs := formRepl(t, 4, true, harness.SwarmOptions{Copies: 3, CopiesMin: 2}, "1h", nil)
	laptop := rs.client
	dir := t.TempDir()
	var paths []string
	for i := range 200 {
		p := filepath.Join(dir, fmt.Sprintf("f%03d", i))
		writeRandomFile(t, p, 64<<10, uint64(1000+i))
		paths = append(paths, p)
	}
	start := time.Now()
	roots := putMany(t, laptop, paths, 32)
	t.Logf("200 puts returned in %v", time.Since(start).Round(100*time.Millisecond))
	harness.WaitFor(t, 2*time.Minute, "all 200 contents at target", func() bool {
		r := laptop.StatusJSON().Replication
		return r != nil && r.Contents == 200 && r.AtTarget == 200
	})
	t.Logf("200 contents at target %v after the first put", time.Since(start).Round(100*time.Millisecond))
	for _, root := range roots[:5] {
		if w := where(t, laptop, root); w.Copies < 3 {
			t.Fatalf("%s: %+v", root, w)
		}
	}
}
