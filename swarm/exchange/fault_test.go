//go:build !faultinject

package exchange

import (
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFaultOffInProductionBuilds checks the sources a production build
// compiles (this package without the faultinject tag): none of them reads
// the environment, so nothing outside the binary can turn corruption on;
// fault_faultinject.go alone does, and production builds leave it out.
func TestFaultOffInProductionBuilds(t *testing.T) {
	pkg, err := build.Default.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pkg.GoFiles) == 0 {
		t.Fatal("no production sources found")
	}
	for _, f := range pkg.GoFiles {
		b, err := os.ReadFile(filepath.Join(pkg.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, banned := range []string{"os.Getenv", "os.LookupEnv", "ANNEX_SWARM_FAULT"} {
			if strings.Contains(string(b), banned) {
				t.Errorf("%s, compiled into production builds, uses %s", f, banned)
			}
		}
	}
	found := false
	for _, f := range pkg.IgnoredGoFiles {
		found = found || f == "fault_faultinject.go"
	}
	if !found {
		t.Error("fault_faultinject.go is not left out of production builds")
	}
}
