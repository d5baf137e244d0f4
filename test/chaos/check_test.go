package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// settleTimeout bounds the wait, after the schedule, for every content to
// reach its target and every removal to reach every member.
const settleTimeout = 3 * time.Minute

// whereResult is the `where --json` contract.
type whereResult struct {
	CID     string `json:"cid"`
	Holders []struct {
		PeerID string `json:"peer_id"`
		Name   string `json:"name"`
	} `json:"holders"`
	Copies      int `json:"copies"`
	Target      int `json:"target"`
	Unreachable int `json:"unreachable"`
}

func (r *run) where(n *harness.Node, cid string) (whereResult, error) {
	var w whereResult
	res := n.CLIWithin(whereBound, "where", cid, "--json")
	if res.Code != 0 {
		return w, fmt.Errorf("where %s on %s: exit %d timed_out=%v: %s", cid, n.Name, res.Code, res.TimedOut, firstLine(res.Stderr))
	}
	if err := json.Unmarshal([]byte(res.Stdout), &w); err != nil {
		return w, fmt.Errorf("decoding where %s: %w", cid, err)
	}
	return w, nil
}

// heal brings the swarm back to health after the schedule: the disk freed,
// every killed daemon started, all connected with the same rules.
func (r *run) heal() {
	if r.disk != "" {
		if err := r.freeDisk(); err != nil {
			r.t.Fatal(err)
		}
	}
	for _, n := range r.killed() {
		if err := restart(n); err != nil {
			r.violations = append(r.violations, fmt.Sprintf("restarting %s after the schedule: %v", n.Name, err))
		}
	}
	if err := r.waitConverged(90 * time.Second); err != nil {
		r.violations = append(r.violations, "after the schedule: "+err.Error())
	}
}

// unsettled returns why the swarm has not settled yet ("" once it has):
// a stored content below its target, or a removed one still held.
func (r *run) unsettled() string {
	for _, c := range r.contents {
		if c.state != "stored" && c.state != "removed" {
			continue
		}
		w, err := r.where(r.client, c.cid)
		if err != nil {
			return err.Error()
		}
		if w.Unreachable > 0 {
			return fmt.Sprintf("where %s: %d members unreachable", c.cid, w.Unreachable)
		}
		if c.state == "stored" && w.Copies < w.Target {
			return fmt.Sprintf("put #%d %s has %d copies, target %d", c.n, c.cid, w.Copies, w.Target)
		}
		if c.state == "removed" && w.Copies > 0 {
			return fmt.Sprintf("removed #%d %s still has %d holders", c.n, c.cid, w.Copies)
		}
	}
	return ""
}

// settle polls until the swarm has settled or settleTimeout passes; what
// is still unsettled then is a broken invariant.
func (r *run) settle() time.Duration {
	start := time.Now()
	deadline := start.Add(settleTimeout)
	for {
		why := r.unsettled()
		if why == "" {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			r.violations = append(r.violations, fmt.Sprintf("not settled %v after the schedule: %s", settleTimeout, why))
			return time.Since(start)
		}
		time.Sleep(time.Second)
	}
}

// checkParallel is how many contents are checked at once.
const checkParallel = 4

// checkContents gets every stored content through a random daemon and
// compares it byte for byte (lost counts those that are gone or differ),
// and checks that no removed content can be got or has a holder.
func (r *run) checkContents() (checked, lost int) {
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, checkParallel)
		fail = func(isLost bool, format string, args ...any) {
			mu.Lock()
			defer mu.Unlock()
			if isLost {
				lost++
			}
			r.violations = append(r.violations, fmt.Sprintf(format, args...))
		}
	)
	for _, c := range r.contents {
		if c.state != "stored" && c.state != "removed" {
			continue
		}
		checked++
		n := pick(r.rng, r.nodes)
		out := filepath.Join(r.dir, "check-"+strconv.Itoa(c.n))
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			defer os.Remove(out)
			start := time.Now()
			res := n.CLIWithin(getBound, "get", c.cid, "-o", out)
			if took := time.Since(start); took > 5*time.Second {
				r.t.Logf("check get #%d (%s, %d bytes) on %s took %v: exit %d", c.n, c.state, c.size, n.Name, took.Round(time.Millisecond), res.Code)
			}
			if c.state == "removed" {
				if res.Code == 0 {
					fail(false, "came back: removed #%d %s was got on %s", c.n, c.cid, n.Name)
				}
				if w, err := r.where(n, c.cid); err != nil {
					fail(false, "%v", err)
				} else if w.Copies > 0 {
					fail(false, "came back: removed #%d %s is held by %d members", c.n, c.cid, w.Copies)
				}
				return
			}
			if res.Code != 0 {
				fail(true, "lost: get of put #%d %s on %s: exit %d timed_out=%v: %s", c.n, c.cid, n.Name, res.Code, res.TimedOut, firstLine(res.Stderr))
				return
			}
			if err := sameBytes(c.path, out); err != nil {
				fail(true, "lost: put #%d %s got from %s differs: %v", c.n, c.cid, n.Name, err)
			}
		})
	}
	wg.Wait()
	return checked, lost
}

// fsckResult is the part of `fsck --json` the suite reads.
type fsckResult struct {
	Checked       int      `json:"checked"`
	Corrupt       []string `json:"corrupt"`
	Orphaned      []string `json:"orphaned"`
	Unreferenced  []string `json:"unreferenced"`
	Incomplete    []string `json:"incomplete"`
	CountersWrong bool     `json:"counters_wrong"`
}

// checkFsck runs `fsck --json` on every daemon: it must exit 0 and report
// nothing corrupt, orphaned, unreferenced or incomplete.
func (r *run) checkFsck() {
	for _, n := range r.nodes {
		res := n.CLIWithin(fsckBound, "fsck", "--json")
		var f fsckResult
		if err := json.Unmarshal([]byte(res.Stdout), &f); err != nil {
			r.violations = append(r.violations, fmt.Sprintf("fsck on %s: exit %d timed_out=%v, no JSON: %s", n.Name, res.Code, res.TimedOut, firstLine(res.Stderr)))
			continue
		}
		if res.Code != 0 || len(f.Corrupt)+len(f.Orphaned)+len(f.Unreferenced)+len(f.Incomplete) > 0 || f.CountersWrong {
			r.violations = append(r.violations, fmt.Sprintf("fsck on %s not clean: exit %d, %d chunks checked, corrupt %v, orphaned %v, unreferenced %v, incomplete %v, counters_wrong %v",
				n.Name, res.Code, f.Checked, f.Corrupt, f.Orphaned, f.Unreferenced, f.Incomplete, f.CountersWrong))
		}
	}
}

// crashMarks are what a Go program prints when it panics, dies or races.
var crashMarks = []string{"panic:", "fatal error:", "DATA RACE"}

// checkLogs scans every daemon's log for a crash.
func (r *run) checkLogs() {
	for _, n := range r.nodes {
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			r.violations = append(r.violations, fmt.Sprintf("reading log of %s: %v", n.Name, err))
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, m := range crashMarks {
				if strings.Contains(line, m) {
					r.violations = append(r.violations, fmt.Sprintf("%s's log line %d: %s", n.Name, i+1, line))
				}
			}
		}
	}
}

// keepLogs copies every daemon's log into the folder named by
// ANNEX_SWARM_CHAOS_LOGS, when set, for reading after the run.
func (r *run) keepLogs() {
	dir := os.Getenv("ANNEX_SWARM_CHAOS_LOGS")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		r.t.Logf("keeping logs: %v", err)
		return
	}
	for _, n := range r.nodes {
		b, err := os.ReadFile(n.LogPath())
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644)
		}
		if err != nil {
			r.t.Logf("keeping the log of %s: %v", n.Name, err)
		}
	}
}
