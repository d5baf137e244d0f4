package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// repo is a throwaway git-annex repository whose swarm remote points at one
// daemon's home.
type repo struct {
	t   testing.TB
	dir string
	env []string
}

func requireGitAnnex(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("git-annex"); err != nil {
		t.Skip("git-annex is not installed (apt-get install -y git-annex); .ci/run installs it")
	}
}

// newRepo makes a git-annex repository with the swarm special remote set up
// against node's daemon.
func newRepo(t *testing.T, node *harness.Node) *repo { return newRepoTB(t, node) }

// newRepoTB is newRepo for tests and benchmarks.
func newRepoTB(t testing.TB, node *harness.Node) *repo {
	t.Helper()
	requireGitAnnex(t)
	dir := filepath.Join(t.TempDir(), "repo")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := &repo{t: t, dir: dir, env: append(os.Environ(),
		"PATH="+bin.Dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=annex-swarm test", "GIT_AUTHOR_EMAIL=test@annex-swarm.invalid",
		"GIT_COMMITTER_NAME=annex-swarm test", "GIT_COMMITTER_EMAIL=test@annex-swarm.invalid",
	)}
	r.run("git", "init", "-q")
	r.run("git", "annex", "init", "test repo")
	r.run("git", "annex", "initremote", "swarm", "type=external", "externaltype=swarm", "encryption=none", "home="+node.Home)
	return r
}

// run runs a command in the repo (or in dir, when given as "-C DIR") with a
// deadline and fails the test on error.
func (r *repo) run(name string, args ...string) string {
	r.t.Helper()
	out, err := r.try(r.dir, name, args...)
	if err != nil {
		r.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

func (r *repo) try(dir, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, r.env
	// git starts git-annex, which starts the remote: at the deadline stop
	// them all, not only git.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (r *repo) write(name string, size int64, seed uint64) {
	r.t.Helper()
	p := filepath.Join(r.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		r.t.Fatal(err)
	}
	writeRandomFile(r.t, p, size, seed)
}

// TestGitAnnexTestremote runs git-annex's own remote test suite, in full,
// against a 3-member swarm (copies 2, copies_min 2): 573 tests, about
// 100,000 requests, most of them on the 1–10 KiB chunk keys of its chunked
// variants (docs/PERFORMANCE.md has the time). ANNEX_SWARM_TESTREMOTE_FAST=1
// runs `testremote --fast` instead, for a quick local run.
func TestGitAnnexTestremote(t *testing.T) {
	requireGitAnnex(t)
	args := []string{"annex", "testremote", "swarm"}
	if os.Getenv("ANNEX_SWARM_TESTREMOTE_FAST") == "1" {
		args = append(args, "--fast")
	}
	c := harness.New(t, bin, 3, fastSync)
	// ANNEX_SWARM_TESTREMOTE_LOGS=DIR keeps the daemons' logs (a failure
	// shows only git-annex's side).
	if dir := os.Getenv("ANNEX_SWARM_TESTREMOTE_LOGS"); dir != "" {
		t.Cleanup(func() {
			for _, n := range c.Nodes {
				b, _ := os.ReadFile(filepath.Join(n.Home, "daemon.log"))
				_ = os.WriteFile(filepath.Join(dir, n.Name+".log"), b, 0o644)
			}
		})
	}
	c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	r := newRepo(t, c.Nodes[0])
	start := time.Now()
	out := r.run("git", args...)
	t.Logf("git %s (3 members) took %v", strings.Join(args, " "), time.Since(start))
	if !strings.Contains(out, "All") || !strings.Contains(out, "passed") {
		t.Errorf("testremote output does not say all passed:\n%s", out)
	}
}

func TestGitAnnexEndToEnd(t *testing.T) {
	requireGitAnnex(t)
	c := harness.New(t, bin, 3, fastSync)
	c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	r := newRepo(t, c.Nodes[0])
	r.run("git", "annex", "numcopies", "1")

	r.write("with space/a file.bin", 6<<20, 21)
	r.write("sub/dir/b.bin", 3<<20, 22)
	r.run("git", "annex", "add", ".")
	r.run("git", "commit", "-q", "-m", "add")

	// copy --to, run from a subdirectory.
	r.run("git", "-C", filepath.Join(r.dir, "sub"), "annex", "copy", "--to", "swarm", ".")
	r.run("git", "annex", "copy", "--to", "swarm", "with space/a file.bin")

	// whereis lists the holders by name.
	out := r.run("git", "annex", "whereis", "with space/a file.bin")
	if !strings.Contains(out, "swarm") || !strings.Contains(out, "node") {
		t.Errorf("whereis does not list the swarm holders:\n%s", out)
	}
	// drop the local copy (numcopies 1: the swarm counts as one copy), get it back.
	r.run("git", "annex", "drop", "with space/a file.bin")
	r.run("git", "annex", "get", "--from", "swarm", "with space/a file.bin")
	r.run("git", "annex", "fsck", "--from", "swarm", "with space/a file.bin")

	// -J4 with 20 files.
	for i := range 20 {
		r.write(fmt.Sprintf("many/f%02d", i), 256<<10, uint64(100+i))
	}
	r.run("git", "annex", "add", "many")
	r.run("git", "commit", "-q", "-m", "many")
	r.run("git", "annex", "copy", "-J4", "--to", "swarm", "many")
	r.run("git", "annex", "drop", "-J4", "many")
	r.run("git", "annex", "get", "-J4", "--from", "swarm", "many")

	// drop --from removes it from the swarm.
	r.run("git", "annex", "drop", "--from", "swarm", "sub/dir/b.bin")
	if out := r.run("git", "annex", "whereis", "sub/dir/b.bin"); strings.Contains(out, "swarm") {
		t.Errorf("after drop --from, whereis still lists the swarm:\n%s", out)
	}

	// With the daemon stopped, CHECKPRESENT is UNKNOWN and nothing is dropped.
	if err := c.Nodes[0].Stop(); err != nil {
		t.Fatal(err)
	}
	out, err := r.try(r.dir, "git", "annex", "drop", "with space/a file.bin")
	if err == nil {
		t.Errorf("drop succeeded with the daemon stopped:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(r.dir, "with space/a file.bin")); err != nil {
		t.Errorf("the local copy is gone after a refused drop: %v", err)
	}
	out, _ = r.try(r.dir, "git", "annex", "fsck", "--from", "swarm", "--fast", "with space/a file.bin")
	if strings.Contains(out, "not present") || strings.Contains(out, "fixing location log") {
		t.Errorf("fsck --from with the daemon down marked the content gone:\n%s", out)
	}
}
