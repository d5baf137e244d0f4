package test

import (
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestDemo runs the README's first quick-start command as a user would.
func TestDemo(t *testing.T) {
	requireGitAnnex(t)
	r := harness.RunCLI(bin, "demo")
	if r.Code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{
		"all 5 members connected",
		"copy holiday.mov (to swarm...)",
		"copies 3/3",
		"kill -9",
		"get holiday.mov (from swarm...)",
		"swarm: host",
		"demo folder removed",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.Stdout)
		}
	}
	// After the kill, the count comes back to the target without the victim.
	after := r.Stdout[strings.Index(r.Stdout, "kill -9"):]
	if !strings.Contains(after, "copies 3/3") {
		t.Errorf("no repair to 3/3 after the kill:\n%s", after)
	}
}

// TestDemoWithoutGitAnnex checks the demo's message when git-annex is missing.
func TestDemoWithoutGitAnnex(t *testing.T) {
	r := harness.RunCLIEnv(bin, []string{"PATH=" + bin.Dir}, "demo")
	if r.Code == 0 {
		t.Fatal("demo succeeded without git-annex on PATH")
	}
	if !strings.Contains(r.Stderr, "git-annex is not installed") || !strings.Contains(r.Stderr, "apt-get install -y git-annex") {
		t.Errorf("unclear message: %q", r.Stderr)
	}
}
