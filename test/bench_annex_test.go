package test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkGitAnnexCopyGet times `git annex copy --to` and `git annex get
// --from` of one file (ANNEX_SWARM_BENCH_MIB, 1 GiB by default) with the
// swarm remote and, in the same run, with a directory special remote on the
// same disk. The swarm: a client member (the repository's daemon) and three
// storage members, copies=2, copies_min=1. Also times `testremote --fast`
// against both.
func BenchmarkGitAnnexCopyGet(b *testing.B) {
	if _, err := os.Stat("/usr/bin/git-annex"); err != nil {
		b.Skip("git-annex not installed")
	}
	size := benchSize()
	var swarmCopy, swarmGet, dirCopy, dirGet, swarmTR, dirTR time.Duration
	for i := 0; i < b.N; i++ {
		c := harness.New(b, bin, 4, fastSync)
		c.FormSwarm(b, harness.SwarmOptions{Copies: 2, CopiesMin: 1, Roles: map[int]string{0: "client"}})
		r := newRepoTB(b, c.Nodes[0])
		r.run("git", "annex", "numcopies", "1")
		dir := filepath.Join(b.TempDir(), "dirremote")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		r.run("git", "annex", "initremote", "dir", "type=directory", "directory="+dir, "encryption=none")
		r.write("big.bin", size, uint64(40+i))
		r.run("git", "annex", "add", "big.bin")
		r.run("git", "commit", "-q", "-m", "big")

		timeIt := func(args ...string) time.Duration {
			start := time.Now()
			r.run("git", args...)
			return time.Since(start)
		}
		dirCopy += timeIt("annex", "copy", "--to", "dir", "big.bin")
		swarmCopy += timeIt("annex", "copy", "--to", "swarm", "big.bin")
		r.run("git", "annex", "drop", "big.bin")
		dirGet += timeIt("annex", "get", "--from", "dir", "big.bin")
		r.run("git", "annex", "drop", "big.bin")
		swarmGet += timeIt("annex", "get", "--from", "swarm", "big.bin")
		dirTR += timeIt("annex", "testremote", "--fast", "dir")
		swarmTR += timeIt("annex", "testremote", "--fast", "swarm")
		for _, n := range c.Nodes {
			n.Node.Stop()
		}
	}
	n := float64(b.N)
	b.ReportMetric(swarmCopy.Seconds()/n, "swarm_copy_s")
	b.ReportMetric(dirCopy.Seconds()/n, "dir_copy_s")
	b.ReportMetric(swarmCopy.Seconds()/dirCopy.Seconds(), "copy_ratio")
	b.ReportMetric(swarmGet.Seconds()/n, "swarm_get_s")
	b.ReportMetric(dirGet.Seconds()/n, "dir_get_s")
	b.ReportMetric(swarmGet.Seconds()/dirGet.Seconds(), "get_ratio")
	b.ReportMetric(swarmTR.Seconds()/n, "swarm_testremote_fast_s")
	b.ReportMetric(dirTR.Seconds()/n, "dir_testremote_fast_s")
	fmt.Fprintf(os.Stderr, "copy %v vs %v, get %v vs %v, testremote --fast %v vs %v\n", swarmCopy, dirCopy, swarmGet, dirGet, swarmTR, dirTR)
}
