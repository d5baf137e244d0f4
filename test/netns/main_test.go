package netns_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// bin are the programs built once for the whole package.
var bin harness.Binaries

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	root, err := harness.ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "annex-swarm-netns-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err = harness.Build(root, dir, os.Getenv("ANNEX_SWARM_RACE") == "1")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
