package test

import (
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestDemo runs the README's first quick-start command as a user would.
func TestDemo(t *testing.T) {
	r := harness.RunCLI(bin, "demo")
	if r.Code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"all 5 members connected", "identical", "demo folder removed"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.Stdout)
		}
	}
}
