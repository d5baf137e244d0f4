package harness

import (
	"fmt"
	"os"
	"testing"
)

// Main is the TestMain of a package of end-to-end tests: it builds the
// programs once into a temporary folder (with -race when
// ANNEX_SWARM_RACE=1, slower), stores them in *bin, runs the tests and
// removes the folder. It returns the exit code for os.Exit.
func Main(m *testing.M, bin *Binaries) int {
	root, err := ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "annex-swarm-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if *bin, err = Build(root, dir, os.Getenv("ANNEX_SWARM_RACE") == "1"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
