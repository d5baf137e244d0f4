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
	progs := [][2]string{{"current", bin.Remote}}
	if base := os.Getenv("ANNEX_SWARM_REMOTE_BASELINE"); base != "" {
		progs = append(progs, [2]string{"baseline", base})
	}
	for _, p := range progs {
		b.Run(p[0], func(b *testing.B) {
			var times []time.Duration
			for b.Loop() {
				d, err := prepareRoundTrip(p[1], home)
				if err != nil {
					b.Fatal(err)
				}
				times = append(times, d)
			}
			slices.Sort(times)
			b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "ms-median")
			if fi, err := os.Stat(p[1]); err == nil {
				b.ReportMetric(float64(fi.Size())/(1<<20), "MiB-binary")
			}
		})
	}
}

// prepareRoundTrip plays git-annex's side of a start-up: it answers the
// remote's GETCONFIG questions with nothing, expects PREPARE-SUCCESS, closes
// stdin and waits for the exit (bounded to 30 s).
func prepareRoundTrip(prog, home string) (time.Duration, error) {
	start := time.Now()
	cmd := exec.Command(prog)
	cmd.Env = append(os.Environ(), "ANNEX_SWARM_HOME="+home)
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
