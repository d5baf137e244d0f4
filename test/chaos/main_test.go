// Package chaos runs annex-swarm under a seeded random schedule of faults:
// five storage daemons and a client, real processes on loopback, driven
// through the annex-swarm CLI while members are killed, restarted and their
// disk fills up; afterwards the swarm must settle with nothing lost.
//
// ANNEX_SWARM_CHAOS_SEED and ANNEX_SWARM_CHAOS_OPS choose the schedule (see
// docs/RELIABILITY.md); the default is the short fixed run CI does.
package chaos

import (
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// bin are the programs built once for the whole package.
var bin harness.Binaries

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &bin)) }
