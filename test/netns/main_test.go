package netns_test

import (
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// bin are the programs built once for the whole package.
var bin harness.Binaries

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &bin)) }
