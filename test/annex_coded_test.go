package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestGitAnnexTestremoteCoded runs git-annex's remote test suite against a
// coded swarm: 6 storage members with erasure = 4+2 (min size 1 MiB,
// copies 2, copies_min 2) and the remote on a client member. With
// --size 2MiB its whole keys (2 MiB and 2 MiB − 1; also 2 MiB + 1 and
// 4 MiB in the full run) are coded, and the keys of its chunked variants
// (20 KiB and smaller) stay replicated. The default run is
// `testremote --fast`; ANNEX_SWARM_TESTREMOTE_FULL=1 runs the full suite
// (docs/ERASURE.md "Shown" has its time).
func TestGitAnnexTestremoteCoded(t *testing.T) {
	requireGitAnnex(t)
	args := []string{"annex", "testremote", "swarm", "--size", "2MiB"}
	if os.Getenv("ANNEX_SWARM_TESTREMOTE_FULL") != "1" {
		args = append(args, "--fast")
	}
	cs := formCodedSwarm(t, 6, "", "desktop")
	r := newRepo(t, cs.clients[0])
	start := time.Now()
	out := r.run("git", args...)
	t.Logf("git %s (6 storage members, 4+2) took %v", strings.Join(args, " "), time.Since(start))
	if !strings.Contains(out, "All") || !strings.Contains(out, "passed") {
		t.Errorf("testremote output does not say all passed:\n%s", out)
	}
	t.Logf("testremote output tail:\n%s", tail(out, 4))

	// The suite removes what it stored. A key of its size sent through the
	// remote is coded: where shows it on 6 members in 4+2.
	r.write("two", 2<<20, 51)
	r.run("git", "annex", "add", "two")
	r.run("git", "annex", "copy", "--to", "swarm", "two")
	// Its CID: a put of the same bytes under the same key is the same
	// content (deduplicated, nothing sent again).
	key := strings.TrimSpace(r.run("git", "annex", "lookupkey", "two"))
	obj := strings.TrimSpace(r.run("git", "annex", "contentlocation", key))
	root := harness.LastLine(cs.clients[0].MustCLI("put", filepath.Join(r.dir, obj), "--key", key))
	var w client.WhereResult
	harness.WaitFor(t, time.Minute, "the 2 MiB key placed on 6 members", func() bool {
		w = where(t, cs.clients[0], root)
		return w.Placed == 6
	})
	if w.Layout != "erasure" || w.Scheme != "4+2" {
		t.Errorf("a 2 MiB key through the remote: where = %+v, want erasure 4+2", w)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
