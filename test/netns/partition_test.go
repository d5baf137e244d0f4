package netns_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

func whereOn(t *testing.T, n *harness.Node, cid string) client.WhereResult {
	t.Helper()
	var w client.WhereResult
	if err := json.Unmarshal([]byte(n.MustCLI("where", cid, "--json")), &w); err != nil {
		t.Fatalf("decoding where: %v", err)
	}
	return w
}

func putRandom(t *testing.T, n *harness.Node, size int) (string, []byte) {
	t.Helper()
	data := make([]byte, size)
	_, _ = rand.Read(data)
	f := filepath.Join(t.TempDir(), "in.bin")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return harness.LastLine(n.MustCLI("put", f)), data
}

// placements counts "copy placed" lines in the logs of nodes.
func placements(nodes []*harness.Node) int {
	total := 0
	for _, n := range nodes {
		b, _ := os.ReadFile(n.LogPath())
		total += strings.Count(string(b), `msg="copy placed"`)
	}
	return total
}

// inSide counts the holders in w that are members of side.
func inSide(side []*harness.Node, w client.WhereResult) int {
	n := 0
	for _, h := range w.Holders {
		for _, m := range side {
			if h.PeerID == m.PeerID {
				n++
			}
		}
	}
	return n
}

// keepLogs copies the daemons' logs into $ANNEX_SWARM_NETNS_LOGS (when
// set) at the end of a failed test, before their homes are removed.
func keepLogs(t *testing.T, nodes []*harness.Node) {
	dir := os.Getenv("ANNEX_SWARM_NETNS_LOGS")
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Logf("keeping logs: %v", err)
			return
		}
		for i, n := range nodes {
			b, err := os.ReadFile(n.LogPath())
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)), b, 0o644)
			}
			if err != nil {
				t.Logf("keeping the log of node%d: %v", i, err)
			}
		}
		t.Logf("daemon logs kept in %s", dir)
	})
}

// TestPartition splits a 5-member swarm 2|3 for longer than repair_after,
// writes, removes and pushes rules on both sides, heals, and checks that
// the rules version and the removal converge, every content is back at
// its target with no more placements than the lost copies need, and
// nothing is lost.
func TestPartition(t *testing.T) {
	ls := newLAN(t, 5, nil, "--repair-interval", "1s")
	ls.form(t, 3, nil)
	nodes := ls.nodes
	keepLogs(t, nodes)
	c := harness.Of(bin, nodes...)
	// copies 3, copies_min 2 (a put succeeds on the side of 2), repair
	// after 5 s.
	c.MustRun(t, "rules", "set", ls.swarm.Rules, "--key", ls.swarm.Key, "copies_min=2", "repair_after=5s")
	nodes[0].MustCLI("rules", "push", ls.swarm.Rules)
	version := func(n *harness.Node) uint64 {
		if st := n.StatusJSON(); st.Swarm != nil {
			return st.Swarm.Version
		}
		return 0
	}
	want := version(nodes[0])
	harness.WaitFor(t, 60*time.Second, "every member on the last version, connected to all", func() bool {
		for _, n := range nodes {
			if version(n) != want || n.StatusJSON().ConnectedPeers < len(nodes)-1 {
				return false
			}
		}
		return true
	})
	before, beforeData := putRandom(t, nodes[4], 2<<20)
	gone, _ := putRandom(t, nodes[4], 1<<20)
	harness.WaitFor(t, 60*time.Second, "3 copies of both contents", func() bool {
		return whereOn(t, nodes[4], before).Copies == 3 && whereOn(t, nodes[4], gone).Copies == 3
	})

	sideA, sideB := nodes[:2], nodes[2:]
	ls.lab.Partition("lan", []string{lanIP(0), lanIP(1)}, []string{lanIP(2), lanIP(3), lanIP(4)})
	split := time.Now()
	harness.WaitFor(t, 120*time.Second, "each side disconnected from the other", func() bool {
		for _, a := range sideA {
			for _, b := range sideB {
				if member(a.StatusJSON(), b.PeerID).Connected || member(b.StatusJSON(), a.PeerID).Connected {
					return false
				}
			}
		}
		return true
	})
	t.Logf("partition seen by every member after %v", time.Since(split).Round(time.Second))

	// Side A writes a content (2 copies: all it has) and a new rules
	// version; side B writes a content and removes one.
	onA, onAData := putRandom(t, sideA[0], 1<<20)
	onB, onBData := putRandom(t, sideB[0], 1<<20)
	sideB[1].MustCLI("rm", gone)
	c.MustRun(t, "rules", "set", ls.swarm.Rules, "--key", ls.swarm.Key, "repair_after=4s")
	sideA[0].MustCLI("rules", "push", ls.swarm.Rules)
	want = version(sideA[0])
	wrote := time.Now()
	// Longer than repair_after on both sides: side B repairs what it
	// lost with side A.
	harness.WaitFor(t, 90*time.Second, "side B back at 3 copies of the content written before", func() bool {
		return inSide(sideB, whereOn(t, sideB[0], before)) == 3
	})
	// Before the count: the seeding of both writes is over (a put returns
	// at copies_min and places the rest in the background), no repair
	// placement is queued or running, and the split has lasted longer than
	// repair_after since the writes, so each side has repaired what it
	// could.
	harness.WaitFor(t, 90*time.Second, "both writes seeded, no placement in flight, split longer than repair_after", func() bool {
		if time.Since(wrote) < 10*time.Second || inSide(sideA, whereOn(t, sideA[0], onA)) != 2 || inSide(sideB, whereOn(t, sideB[0], onB)) != 3 {
			return false
		}
		for _, n := range nodes {
			if r := n.StatusJSON().Replication; r == nil || r.Queued != 0 || r.Placing != 0 || r.InRepair != 0 {
				return false
			}
		}
		return true
	})
	placedBeforeHeal := placements(nodes)
	ls.lab.Unpartition("lan")
	healed := time.Now()

	harness.WaitFor(t, 120*time.Second, "rules version converged", func() bool {
		for _, n := range nodes {
			if version(n) != want {
				return false
			}
		}
		return true
	})
	harness.WaitFor(t, 120*time.Second, "the removal reached side A", func() bool {
		for _, n := range nodes {
			if whereOn(t, n, gone).Copies != 0 {
				return false
			}
		}
		return true
	})
	harness.WaitFor(t, 120*time.Second, "side A's content at 3 copies", func() bool {
		return whereOn(t, sideB[0], onA).Copies >= 3
	})
	t.Logf("healed: converged in %v", time.Since(healed).Round(time.Second))
	// Both sides repaired the content written before while split (side A
	// up to its 2 members, side B to 3): the extra copies are trimmed
	// back to the target.
	for _, c := range []string{before, onA, onB} {
		t.Logf("%s: %d copies right after the heal", c, whereOn(t, nodes[0], c).Copies)
	}
	harness.WaitFor(t, 120*time.Second, "every content back at exactly 3 copies", func() bool {
		for _, c := range []string{before, onA, onB} {
			if whereOn(t, nodes[0], c).Copies != 3 {
				return false
			}
		}
		return true
	})
	t.Logf("healed: every content at its target after %v", time.Since(healed).Round(time.Second))
	// The only copy lost to the split that is still missing after it is
	// side A's content's third one.
	if extra := placements(nodes) - placedBeforeHeal; extra > 1 {
		t.Errorf("%d placements after the heal; the lost copies needed 1", extra)
	} else {
		t.Logf("%d placement(s) after the heal", extra)
	}
	for _, cs := range []struct {
		cid  string
		data []byte
	}{{before, beforeData}, {onA, onAData}, {onB, onBData}} {
		w := whereOn(t, nodes[0], cs.cid)
		if w.Copies != 3 {
			t.Errorf("%s: %d copies after the heal, want 3", cs.cid, w.Copies)
		}
		out := filepath.Join(t.TempDir(), "out")
		nodes[1].MustCLI("get", cs.cid, "-o", out)
		got, err := os.ReadFile(out)
		if err != nil || string(got) != string(cs.data) {
			t.Errorf("%s: get after the heal returned other bytes (%v)", cs.cid, err)
		}
	}
}
