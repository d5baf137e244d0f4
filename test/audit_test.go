package test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// auditEvery is the audit interval of TestAuditRestoresDamagedCopy.
const auditEvery = 5 * time.Second

// chunkFiles lists the chunk files under a daemon's store
// (HOME/store/chunks/xx/<cid>, docs/STORE.md).
func chunkFilesOf(t *testing.T, n *harness.Node) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(n.Home, "store", "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Chunk files deleted and flipped on a holder behind its daemon's back are
// found by the audit within one interval, and the content is back at its
// target count without any get.
func TestAuditRestoresDamagedCopy(t *testing.T) {
	var nodes []*harness.Node
	for i := range 3 {
		nodes = append(nodes, harness.NewNode(t, bin, fmt.Sprintf("s%d", i), harness.Options{
			Args: append(append([]string(nil), replArgs...), "--audit-interval", auditEvery.String()),
		}))
	}
	c := harness.Of(bin, nodes...)
	s := c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	want := swarmVersion(c.Nodes[0])
	harness.WaitFor(t, 60*time.Second, "the rules on every member, all connected", func() bool {
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
	_ = s

	src := filepath.Join(t.TempDir(), "src")
	writeRandomFile(t, src, 6<<20, 31) // a few chunks of about 1 MiB
	root := harness.LastLine(c.Nodes[0].MustCLI("put", src))
	w := waitCopies(t, c.Nodes[0], root, 2, time.Minute)
	// where ranks the holders: the first audits the others.
	auditor, victim := memberByName(c, w.Holders[0].Name), memberByName(c, w.Holders[1].Name)
	// Wait for the auditor's first round, so that the damage is found by
	// a later one.
	harness.WaitFor(t, 2*auditEvery, "a first audit round", func() bool {
		a := auditor.StatusJSON().Audit
		return a != nil && a.LastAudit != ""
	})

	files := chunkFilesOf(t, victim)
	if len(files) < 2 {
		t.Fatalf("%s holds %d chunk files; the test needs 2", victim.Name, len(files))
	}
	// Delete all chunk files but one, and flip a byte in that one: every
	// chunk the audit may pick is damaged.
	for _, f := range files[1:] {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(files[0], b, 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := time.Now()

	// Found within one interval (plus the round's own bound).
	harness.WaitFor(t, auditEvery+5*time.Second, "the auditor to count a failed audit", func() bool {
		return auditor.StatusJSON().Audit.Failed >= 1
	})
	found := time.Since(damaged)
	if a := victim.StatusJSON().Audit; a == nil || a.LostHere < 1 {
		t.Fatalf("the damaged holder's audit status %+v, want lost_here ≥ 1", a)
	}
	if log := auditor.LogTail(400); !strings.Contains(log, "holder failed an audit") {
		t.Fatalf("the auditor's log does not say the holder failed:\n%s", auditor.LogTail(40))
	}

	// Back at target: at least 2 members whose stores verify whole.
	var holders []string
	harness.WaitFor(t, 60*time.Second, "2 intact copies again", func() bool {
		w = where(t, auditor, root)
		holders = holders[:0]
		for _, h := range w.Holders {
			n := memberByName(c, h.Name)
			if len(chunkFilesOf(t, n)) == 0 {
				continue
			}
			holders = append(holders, h.Name)
		}
		return w.Copies >= 2 && len(holders) >= 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, name := range holders {
		r, err := memberByName(c, name).Client().Fsck(ctx, client.FsckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if !r.OK() || len(r.Incomplete) > 0 {
			t.Fatalf("fsck on holder %s after the repair: %+v", name, r)
		}
	}
	a := auditor.StatusJSON().Audit
	t.Logf("damage on %s found %v after it was made (interval %v); holders now %v; auditor %s: %+v",
		victim.Name, found.Round(100*time.Millisecond), auditEvery, holderNames(w), auditor.Name, *a)
	if out := auditor.MustCLI("status"); !strings.Contains(out, "audits") {
		t.Fatalf("status does not show the audits:\n%s", out)
	}
}
