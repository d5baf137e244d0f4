package test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkRemoteStartup runs the real git-annex-remote-swarm once per
// iteration, as git-annex does for every command: start, VERSION, PREPARE
// (the remote asks the daemon for its status), stdin closed, exit. It reports
// the median wall time. ANNEX_SWARM_REMOTE_BASELINE names another build of
// the remote, measured in the same run against the same daemon (docs/PERFORMANCE.md).
//
//	go test -run '^$' -bench RemoteStartup -benchtime 50x ./test/
func BenchmarkRemoteStartup(b *testing.B) {
	c := harness.New(b, bin, 1, harness.Options{})
	c.FormSwarm(b, harness.SwarmOptions{})
	home := c.Nodes[0].Home
	// A repository whose git config names the home, for the remote that
	// finds it there (one `git config` run per start).
	repo := b.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"config", "annex-swarm.home", home}} {
		if out, err := exec.Command("git", append([]string{"-C", repo}, args...)...).CombinedOutput(); err != nil {
			b.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	var noHomeEnv []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ANNEX_SWARM_HOME=") {
			noHomeEnv = append(noHomeEnv, kv)
		}
	}
	withHomeEnv := append(slices.Clone(noHomeEnv), "ANNEX_SWARM_HOME="+home)
	type variant struct {
		name, prog, dir string
		env             []string
	}
	vs := []variant{{"current-env", bin.Remote, repo, withHomeEnv}, {"current-gitconfig", bin.Remote, repo, noHomeEnv}}
	if base := os.Getenv("ANNEX_SWARM_REMOTE_BASELINE"); base != "" {
		vs = append(vs, variant{"baseline-env", base, repo, withHomeEnv}, variant{"baseline-gitconfig", base, repo, noHomeEnv})
	}
	for _, v := range vs {
		b.Run(v.name, func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				d, err := prepareRoundTrip(v.prog, v.dir, v.env)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, d)
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
			if fi, err := os.Stat(v.prog); err == nil {
				b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-binary")
			}
		})
	}
}

// prepareRoundTrip plays git-annex's side of a start-up: it answers the
// remote's GETCONFIG questions with nothing, expects PREPARE-SUCCESS, closes
// stdin and waits for the exit (bounded to 30 s).
func prepareRoundTrip(prog, dir string, env []string) (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command(prog)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out := bufio.NewReader(io.LimitReader(outPipe, 1<<20))
	fail := func(err error) (time.Duration, error) {
		in.Close()
		cmd.Wait()
		return 0, err
	}
	line, err := out.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "VERSION ") {
		return fail(fmt.Errorf("first line %q: %v", line, err))
	}
	if _, err := io.WriteString(in, "PREPARE\n"); err != nil {
		return fail(err)
	}
	for {
		line, err := out.ReadString('\n')
		if err != nil {
			return fail(fmt.Errorf("reading the answer to PREPARE: %w", err))
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "PREPARE-SUCCESS":
			in.Close()
			if err := cmd.Wait(); err != nil {
				return 0, fmt.Errorf("remote exited: %w", err)
			}
			return time.Since(start), nil
		case strings.HasPrefix(line, "GETCONFIG "), strings.HasPrefix(line, "GETGITDIR"):
			if _, err := io.WriteString(in, "VALUE \n"); err != nil {
				return fail(err)
			}
		case strings.HasPrefix(line, "DEBUG "):
		default:
			return fail(fmt.Errorf("unexpected line %q", line))
		}
	}
}
