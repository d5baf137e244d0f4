// Package test holds annex-swarm's end-to-end tests: real annex-swarmd
// processes on loopback, driven through the real annex-swarm CLI.
package test

import (
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// bin are the programs built once for the whole package.
var bin harness.Binaries

func TestMain(m *testing.M) { os.Exit(harness.Main(m, &bin)) }
