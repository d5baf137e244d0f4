package chaos

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Defaults of the run CI does: a fixed seed and the 200 operations.
const (
	defaultSeed = 1
	defaultOps  = 200
)

// weight is the relative odds of one operation kind.
type weight struct {
	kind string
	w    int
}

// defaultWeights are the operation kinds of the default schedule. The
// fill (a member's disk filling up) is among them since placement routes
// around a full member (issue 10); ANNEX_SWARM_CHAOS_FULL=0 leaves it out,
// and with it the small tmpfs that member's store is on.
var defaultWeights = []weight{
	{"put", 34}, {"get", 28}, {"rm", 8}, {"rules", 5},
	{"kill", 9}, {"restart", 9}, {"fill", 7},
}

// noFillWeights are defaultWeights without the fill.
var noFillWeights = defaultWeights[:len(defaultWeights)-1]

func envUint(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// TestChaos runs a seeded random schedule of puts, gets, removals, rules
// changes, kills, restarts and a filling disk (not with
// ANNEX_SWARM_CHAOS_FULL=0) against five storage members and a client, lets the swarm settle and
// checks that nothing was lost, nothing removed came back, every store
// verifies, every content is at its target and no daemon crashed.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("the chaos run takes minutes")
	}
	seed := envUint(t, "ANNEX_SWARM_CHAOS_SEED", defaultSeed)
	ops := int(envUint(t, "ANNEX_SWARM_CHAOS_OPS", defaultOps))
	weights, full := defaultWeights, os.Getenv("ANNEX_SWARM_CHAOS_FULL") != "0"
	if !full {
		weights = noFillWeights
	}
	start := time.Now()
	const copies, copiesMin = 3, 2
	r := &run{
		world:    newWorld(t, copies, copiesMin, full),
		rng:      rand.New(rand.NewPCG(seed, 0x6368616f73)),
		seed:     seed,
		dir:      t.TempDir(),
		counts:   map[string]int{},
		failed:   map[string]int{},
		timedOut: map[string]int{},
		weights:  weights,
	}
	t.Logf("swarm formed in %v; seed=%d ops=%d", time.Since(start).Round(time.Millisecond), seed, ops)
	scheduleStart := time.Now()
	for range ops {
		r.do(r.draw())
	}
	scheduleTook := time.Since(scheduleStart)
	t.Logf("schedule of %d operations took %v; done %v, failed %v, timed out %v",
		ops, scheduleTook.Round(time.Millisecond), r.counts, r.failed, r.timedOut)

	r.heal()
	settled := r.settle()
	t.Logf("settled in %v", settled.Round(time.Millisecond))
	phase := time.Now()
	checked, lost := r.checkContents()
	t.Logf("contents checked in %v", time.Since(phase).Round(time.Millisecond))
	phase = time.Now()
	r.checkFsck()
	r.checkLogs()
	r.keepLogs()
	t.Logf("fsck and logs checked in %v", time.Since(phase).Round(time.Millisecond))
	fmt.Printf("chaos: seed=%d ops=%d puts=%d gets=%d rms=%d kills=%d restarts=%d fills=%d contents_checked=%d lost=%d\n",
		seed, ops, r.counts["put"], r.counts["get"], r.counts["rm"], r.counts["kill"], r.counts["restart"], r.counts["fill"], checked, lost)
	t.Logf("whole run %v (schedule %v, settle %v)", time.Since(start).Round(time.Millisecond), scheduleTook.Round(time.Millisecond), settled.Round(time.Millisecond))
	if len(r.violations) > 0 {
		t.Fatalf("seed %d: %d invariant(s) broken:\n%s", seed, len(r.violations), strings.Join(r.violations, "\n"))
	}
}

// draw picks the next operation kind by weight.
func (r *run) draw() string {
	total := 0
	for _, k := range r.weights {
		total += k.w
	}
	x := r.rng.IntN(total)
	for _, k := range r.weights {
		if x < k.w {
			return k.kind
		}
		x -= k.w
	}
	panic("unreachable")
}

// do runs one operation of kind.
func (r *run) do(kind string) {
	switch kind {
	case "put":
		r.opPut()
	case "get":
		r.opGet()
	case "rm":
		r.opRm()
	case "rules":
		r.opRules()
	case "kill":
		r.opKill()
	case "restart":
		r.opRestart()
	case "fill":
		r.opFill()
	default:
		r.t.Fatalf("unknown operation %q", kind)
	}
}
