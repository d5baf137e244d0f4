package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// Bounds of the CLI calls: a call still running at its bound is killed and
// counted as a failed operation.
const (
	putBound   = 60 * time.Second // and a second per MiB
	getBound   = 90 * time.Second
	rmBound    = 30 * time.Second
	rulesBound = 30 * time.Second
	whereBound = 15 * time.Second
	fsckBound  = 90 * time.Second
)

// content is one put of the schedule and what the suite knows of it.
type content struct {
	n    int
	path string // the source bytes, kept until the content is removed
	size int64
	cid  string
	// state: stored (put reported success), removed (rm reported success),
	// unsure (a put or rm that failed or timed out: either outcome is
	// allowed, so no invariant is checked on it).
	state string
}

// run is the state of one chaos run.
type run struct {
	*world
	rng      *rand.Rand
	seed     uint64
	dir      string
	contents []*content
	counts   map[string]int // operations done, by kind
	failed   map[string]int // operations that failed or timed out, by kind
	timedOut map[string]int
	weights  []weight
	// violations are broken invariants found during the schedule (a get
	// that returned different bytes).
	violations []string
}

// live returns the contents whose put succeeded and that were not removed.
func (r *run) live() []*content {
	var out []*content
	for _, c := range r.contents {
		if c.state == "stored" {
			out = append(out, c)
		}
	}
	return out
}

// pick returns a random element of xs.
func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// cli runs one bounded CLI call on n and records a failure of kind.
func (r *run) cli(kind string, n *harness.Node, bound time.Duration, args ...string) (harness.Result, bool) {
	res := n.CLIWithin(bound, args...)
	if res.Code != 0 {
		r.failed[kind]++
		if res.TimedOut {
			r.timedOut[kind]++
		}
		r.t.Logf("op %s on %s: %v: exit %d timed_out=%v: %s", kind, n.Name, args, res.Code, res.TimedOut, firstLine(res.Stderr))
		if res.TimedOut {
			v := fmt.Sprintf("hung: %s on %s did not return within %v: %v; the last lines of its log:\n%s",
				kind, n.Name, bound, args, n.LogTail(8))
			if r.diskFull() {
				v += fmt.Sprintf("\n%s's disk is full; the last lines of its log:\n%s", r.diskNode.Name, r.diskNode.LogTail(8))
			}
			r.violations = append(r.violations, v)
		}
		return res, false
	}
	return res, true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// entry returns the daemon to drive a user command through: the client
// three times in four when it runs, else a running storage member (at most
// maxDown daemons are down, so one runs).
func (r *run) entry() *harness.Node {
	if r.client.Running() && r.rng.IntN(4) != 0 {
		return r.client
	}
	return pick(r.rng, r.running(true))
}

// putSize draws a size: mostly small, some of a few MiB, a few large.
func (r *run) putSize() int64 {
	switch p := r.rng.IntN(100); {
	case p < 70:
		return 1<<10 + r.rng.Int64N(63<<10) // 1 KiB to 64 KiB
	case p < 90:
		return 64<<10 + r.rng.Int64N(960<<10) // 64 KiB to 1 MiB
	case p < 98:
		return 1<<20 + r.rng.Int64N(7<<20) // 1 to 8 MiB
	default:
		return 16<<20 + r.rng.Int64N(48<<20) // 16 to 64 MiB
	}
}

// opPut writes a new file of random bytes (drawn from the seed) and puts it.
func (r *run) opPut() {
	r.counts["put"]++
	c := &content{n: len(r.contents), size: r.putSize(), state: "unsure"}
	c.path = filepath.Join(r.dir, "src-"+strconv.Itoa(c.n))
	if err := writeRandom(c.path, c.size, r.seed, uint64(c.n)); err != nil {
		r.t.Fatal(err)
	}
	r.contents = append(r.contents, c)
	n := r.entry()
	res, ok := r.cli("put", n, putBound+time.Duration(c.size>>20)*time.Second, "put", c.path)
	if !ok {
		return
	}
	c.cid, c.state = harness.LastLine(res.Stdout), "stored"
	r.t.Logf("put #%d (%d bytes) on %s: %s", c.n, c.size, n.Name, c.cid)
}

// opGet gets a stored content through a random running daemon and compares
// it with its source byte for byte. A get that fails is a failed operation
// (its holders may be down); different bytes break an invariant.
func (r *run) opGet() {
	live := r.live()
	if len(live) == 0 {
		r.opPut()
		return
	}
	r.counts["get"]++
	c := pick(r.rng, live)
	n := pick(r.rng, r.running(false))
	out := filepath.Join(r.dir, "get")
	os.Remove(out)
	if _, ok := r.cli("get", n, getBound, "get", c.cid, "-o", out); !ok {
		return
	}
	if err := sameBytes(c.path, out); err != nil {
		r.violations = append(r.violations, fmt.Sprintf("get of %s (put #%d) on %s returned other bytes: %v", c.cid, c.n, n.Name, err))
	}
	os.Remove(out)
}

// opRm removes a stored content.
func (r *run) opRm() {
	live := r.live()
	if len(live) == 0 {
		r.opPut()
		return
	}
	r.counts["rm"]++
	c := pick(r.rng, live)
	c.state = "unsure"
	n := r.entry()
	if _, ok := r.cli("rm", n, rmBound, "rm", c.cid); !ok {
		return
	}
	c.state = "removed"
	os.Remove(c.path)
	r.t.Logf("rm #%d on %s: %s", c.n, n.Name, c.cid)
}

// opRules authors a new version of the rules offline with other copies
// and copies_min and pushes it through a running daemon.
func (r *run) opRules() {
	r.counts["rules"]++
	copies := 2 + r.rng.IntN(3) // 2..4
	copiesMin := 1 + r.rng.IntN(2)
	r.cluster.MustRun(r.t, "rules", "set", r.swarm.Rules, "--key", r.swarm.Key,
		"copies="+strconv.Itoa(copies), "copies_min="+strconv.Itoa(copiesMin))
	n := pick(r.rng, r.running(false))
	if _, ok := r.cli("rules", n, rulesBound, "rules", "push", r.swarm.Rules); !ok {
		return
	}
	r.t.Logf("rules push on %s: copies=%d copies_min=%d", n.Name, copies, copiesMin)
}

// maxDown is how many daemons may be down at once.
const maxDown = 2

// opKill kills -9 a random running daemon, keeping at most maxDown down.
func (r *run) opKill() {
	if len(r.killed()) >= maxDown {
		r.opRestart()
		return
	}
	r.counts["kill"]++
	n := pick(r.rng, r.running(false))
	n.Kill()
	r.t.Logf("kill -9 %s", n.Name)
}

// opRestart starts a random killed daemon again.
func (r *run) opRestart() {
	down := r.killed()
	if len(down) == 0 {
		r.opKill()
		return
	}
	r.counts["restart"]++
	n := pick(r.rng, down)
	if err := restart(n); err != nil {
		r.failed["restart"]++
		r.t.Logf("restart %s: %v", n.Name, err)
		return
	}
	r.t.Logf("restarted %s", n.Name)
}

// restart starts a killed daemon again on the addresses it had, as a host
// with listen addresses in its config does, so that the addresses in the
// rules stay true. (The harness's daemons also listen on a fresh port each
// start; members then find that one through the DHT, which is slower.)
func restart(n *harness.Node) error {
	if !slices.Contains(n.Args, "--listen") {
		for _, a := range n.Addrs {
			if strings.HasPrefix(a, "/ip4/127.0.0.1/") {
				n.Args = append(n.Args, "--listen", a)
			}
		}
	}
	return n.Start()
}

// opFill fills the small disk, or frees it when it is full.
func (r *run) opFill() {
	if r.disk == "" {
		r.counts["fill_skipped"]++
		r.t.Logf("fill skipped: %s", r.diskWhyNot)
		return
	}
	if r.diskFull() {
		if err := r.freeDisk(); err != nil {
			r.t.Fatal(err)
		}
		r.counts["free"]++
		r.t.Logf("freed the disk of %s", r.diskNode.Name)
		return
	}
	r.counts["fill"]++
	if err := r.fillDisk(); err != nil {
		r.t.Fatal(err)
	}
	r.t.Logf("filled the disk of %s", r.diskNode.Name)
}

// writeRandom writes size bytes drawn from (seed, n) to path.
func writeRandom(path string, size int64, seed, n uint64) error {
	var key [32]byte
	copy(key[:], fmt.Sprintf("chaos-%d-%d", seed, n))
	src := rand.NewChaCha8(key)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if _, err := io.CopyN(f, src, size); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// sameBytes compares two files byte for byte.
func sameBytes(want, got string) error {
	a, err := os.Open(want)
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := os.Open(got)
	if err != nil {
		return err
	}
	defer b.Close()
	bufA, bufB := make([]byte, 1<<20), make([]byte, 1<<20)
	var off int64
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if na != nb || !bytes.Equal(bufA[:na], bufB[:nb]) {
			return fmt.Errorf("differ in the MiB at offset %d (%d and %d bytes read)", off, na, nb)
		}
		off += int64(na)
		endA := errors.Is(errA, io.EOF) || errors.Is(errA, io.ErrUnexpectedEOF)
		endB := errors.Is(errB, io.EOF) || errors.Is(errB, io.ErrUnexpectedEOF)
		if endA && endB {
			return nil
		}
		if errA != nil && !endA {
			return errA
		}
		if errB != nil && !endB {
			return errB
		}
	}
}
