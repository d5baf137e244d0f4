// Package chaos runs annex-swarm under a seeded random schedule of faults:
// five storage daemons and a client, real processes on loopback, driven
// through the annex-swarm CLI while members are killed, restarted and their
// disk fills up; afterwards the swarm must settle with nothing lost.
//
// ANNEX_SWARM_CHAOS_SEED and ANNEX_SWARM_CHAOS_OPS choose the schedule (see
// docs/RELIABILITY.md); the default is the short fixed run CI does.
package chaos

import (
	"fmt"
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// bin are the programs built once for the whole package.
var bin harness.Binaries

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := harness.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "annex-swarm-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The daemons are built with -race when ANNEX_SWARM_RACE=1 (slower).
	bin, err = harness.Build(root, dir, os.Getenv("ANNEX_SWARM_RACE") == "1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
