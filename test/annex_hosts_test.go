package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestGitAnnexPerHostHome: the daemon home is chosen on each host, not
// shared through the git-annex branch. One repository and two clones, each
// beside its own daemon with its own home, set up without any home=: the
// origin and one clone name their daemon with git config annex-swarm.home,
// the other clone with $ANNEX_SWARM_HOME. Both clones get the content from
// the swarm; the second does it with the first daemon stopped, so it can only
// have used its own.
func TestGitAnnexPerHostHome(t *testing.T) {
	requireGitAnnex(t)
	c := harness.New(t, bin, 2, fastSync)
	c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	hostA, hostB := c.Nodes[0], c.Nodes[1]

	origin := bareRepo(t, "origin")
	origin.run("git", "init", "-q")
	origin.run("git", "annex", "init", "origin on host A")
	origin.run("git", "config", "annex-swarm.home", hostA.Home)
	origin.run("git", "annex", "initremote", "swarm", "type=external", "externaltype=swarm", "encryption=none")
	origin.write("photo.bin", 2<<20, 31)
	want := fileSHA256(t, filepath.Join(origin.dir, "photo.bin"))
	origin.run("git", "annex", "add", "photo.bin")
	origin.run("git", "commit", "-q", "-m", "add photo")
	origin.run("git", "annex", "copy", "--to", "swarm", "photo.bin")
	if log := origin.run("git", "show", "git-annex:remote.log"); strings.Contains(log, "home=") {
		t.Fatalf("the git-annex branch holds a home:\n%s", log)
	}

	clone := func(name string, env ...string) *repo {
		r := bareRepo(t, name)
		r.env = append(r.env, env...)
		r.run("git", "clone", "-q", origin.dir, r.dir)
		r.run("git", "annex", "init", name)
		return r
	}
	onA := clone("clone on host A")
	onA.run("git", "config", "annex-swarm.home", hostA.Home)
	onA.run("git", "annex", "enableremote", "swarm")
	onA.run("git", "annex", "get", "--from", "swarm", "photo.bin")
	if got := fileSHA256(t, filepath.Join(onA.dir, "photo.bin")); got != want {
		t.Fatal("the clone on host A got other bytes")
	}
	if info := onA.run("git", "annex", "info", "swarm"); !strings.Contains(info, hostA.Home+" (from git config annex-swarm.home)") {
		t.Errorf("info of the clone on host A does not name its daemon:\n%s", info)
	}

	onB := clone("clone on host B", "ANNEX_SWARM_HOME="+hostB.Home)
	onB.run("git", "annex", "enableremote", "swarm")
	if err := hostA.Stop(); err != nil {
		t.Fatal(err)
	}
	onB.run("git", "annex", "get", "--from", "swarm", "photo.bin")
	if got := fileSHA256(t, filepath.Join(onB.dir, "photo.bin")); got != want {
		t.Fatal("the clone on host B got other bytes")
	}
	if info := onB.run("git", "annex", "info", "swarm"); !strings.Contains(info, hostB.Home+" (from $ANNEX_SWARM_HOME)") {
		t.Errorf("info of the clone on host B does not name its daemon:\n%s", info)
	}
}

// bareRepo is a repo helper over a fresh, empty folder (no git init).
func bareRepo(t *testing.T, name string) *repo {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return &repo{t: t, dir: dir, env: append(os.Environ(),
		"PATH="+bin.Dir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=annex-swarm test", "GIT_AUTHOR_EMAIL=test@annex-swarm.invalid",
		"GIT_COMMITTER_NAME=annex-swarm test", "GIT_COMMITTER_EMAIL=test@annex-swarm.invalid",
	)}
}
