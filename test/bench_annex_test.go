package test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkGitAnnexCopyGet times `git annex copy --to` and `git annex get
// --from` of one file (ANNEX_SWARM_BENCH_MIB, 1 GiB by default) with the
// swarm remote and, in the same run, with a directory special remote on the
// same disk, and beside `cp FILE DEST && sync` of the same file to the same
// disk (issue 11). The swarm: a client member (the repository's daemon) and
// three storage members, copies=2, copies_min=1. Also times `testremote
// --fast` against both.
func BenchmarkGitAnnexCopyGet(b *testing.B) {
	if _, err := os.Stat("/usr/bin/git-annex"); err != nil {
		b.Skip("git-annex not installed")
	}
	size := benchSize()
	var swarmCopy, swarmGet, dirCopy, dirGet, swarmTR, dirTR, cpSync time.Duration
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
		start := time.Now()
		r.run("sh", "-c", `cp big.bin "$0" && sync`, filepath.Join(b.TempDir(), "cp.bin"))
		cpSync += time.Since(start)
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
	b.ReportMetric(cpSync.Seconds()/n, "cp_sync_s")
	b.ReportMetric(swarmCopy.Seconds()/cpSync.Seconds(), "copy_cp_sync_ratio")
	b.ReportMetric(swarmGet.Seconds()/n, "swarm_get_s")
	b.ReportMetric(dirGet.Seconds()/n, "dir_get_s")
	b.ReportMetric(swarmGet.Seconds()/dirGet.Seconds(), "get_ratio")
	b.ReportMetric(swarmTR.Seconds()/n, "swarm_testremote_fast_s")
	b.ReportMetric(dirTR.Seconds()/n, "dir_testremote_fast_s")
	fmt.Fprintf(os.Stderr, "copy %v vs %v (cp + sync %v), get %v vs %v, testremote --fast %v vs %v\n", swarmCopy, dirCopy, cpSync, swarmGet, dirGet, swarmTR, dirTR)
}

// BenchmarkGitAnnexTestremote times git-annex's full `testremote` (573
// tests, about 100,000 requests, most on 1–10 KiB chunk keys) against the
// swarm remote of TestGitAnnexTestremote (3 storage members, copies 2,
// copies_min 2) and, in the same run, against a directory special remote:
// the per-request overhead of the swarm. Both run with --debug, whose
// timestamped protocol lines give the swarm remote's latency per request
// type (reported as <type>_median_ms and _p90_ms). ANNEX_SWARM_BENCH_LOG=FILE
// keeps the swarm run's --debug output in FILE.
func BenchmarkGitAnnexTestremote(b *testing.B) {
	requireGitAnnex(b)
	var swarmTR, dirTR time.Duration
	lat := map[string][]time.Duration{}
	getstates := 0
	for range b.N {
		c := harness.New(b, bin, 3, fastSync)
		c.FormSwarm(b, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
		r := newRepoTB(b, c.Nodes[0])
		dir := filepath.Join(b.TempDir(), "dirremote")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		r.run("git", "annex", "initremote", "dir", "type=directory", "directory="+dir, "encryption=none")
		start := time.Now()
		r.run("git", "annex", "testremote", "--debug", "dir")
		dirTR += time.Since(start)
		start = time.Now()
		out := r.run("git", "annex", "testremote", "--debug", "swarm")
		swarmTR += time.Since(start)
		if f := os.Getenv("ANNEX_SWARM_BENCH_LOG"); f != "" {
			// The whole --debug output, for reading where the time goes.
			if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
				b.Fatal(err)
			}
		}
		for k, v := range requestLatencies(out) {
			lat[k] = append(lat[k], v...)
		}
		getstates += countGetstates(out)
		for _, n := range c.Nodes {
			n.Node.Stop()
		}
	}
	n := float64(b.N)
	b.ReportMetric(swarmTR.Seconds()/n, "swarm_testremote_s")
	b.ReportMetric(dirTR.Seconds()/n, "dir_testremote_s")
	b.ReportMetric(swarmTR.Seconds()/dirTR.Seconds(), "ratio")
	for k, v := range lat {
		slices.Sort(v)
		name := strings.ToLower(strings.ReplaceAll(k, " ", "_"))
		b.ReportMetric(float64(v[len(v)/2])/1e6, name+"_median_ms")
		b.ReportMetric(float64(v[len(v)*9/10])/1e6, name+"_p90_ms")
		b.ReportMetric(float64(len(v))/n, name+"_count")
		var sum time.Duration
		for _, d := range v {
			sum += d
		}
		b.ReportMetric(sum.Seconds()/n, name+"_sum_s")
	}
	b.ReportMetric(float64(getstates)/n, "getstate_count")
}

// countGetstates counts the GETSTATE questions the remote asked git-annex
// in its --debug output.
func countGetstates(out string) int {
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if m := debugLine.FindStringSubmatch(line); m != nil && m[3] == "-->" && m[5] == "GETSTATE" {
			n++
		}
	}
	return n
}

// debugLine is a protocol line in git-annex's --debug output:
// "[2026-11-24 23:17:04.911536056] (Annex.ExternalAddonProcess) PROG[1] <-- J 1 REMOVE KEY".
var debugLine = regexp.MustCompile(`^\[(\S+ \S+)\] \(Annex\.ExternalAddonProcess\) \S+\[(\d+)\] (<--|-->) (?:J (\d+) )?(\S+)(?: (\S+))?`)

// requestLatencies pairs each TRANSFER, CHECKPRESENT and REMOVE request in
// git-annex's --debug output with the remote's final answer to it.
func requestLatencies(out string) map[string][]time.Duration {
	type open struct {
		name string
		at   time.Time
	}
	pending := map[string]open{}
	got := map[string][]time.Duration{}
	for _, line := range strings.Split(out, "\n") {
		m := debugLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		at, err := time.Parse("2006-01-02 15:04:05.999999999", m[1])
		if err != nil {
			continue
		}
		job, word := m[2]+"/"+m[4], m[5]
		if m[3] == "<--" {
			switch word {
			case "TRANSFER":
				pending[job] = open{word + " " + m[6], at}
			case "CHECKPRESENT", "REMOVE":
				pending[job] = open{word, at}
			}
			continue
		}
		if p, ok := pending[job]; ok && (strings.HasSuffix(word, "-SUCCESS") || strings.HasSuffix(word, "-FAILURE") || word == "CHECKPRESENT-UNKNOWN") {
			got[p.name] = append(got[p.name], at.Sub(p.at))
			delete(pending, job)
		}
	}
	return got
}
