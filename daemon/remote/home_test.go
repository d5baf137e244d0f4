package remote

import (
	"context"
	"os/exec"
	"testing"

	"github.com/annex-swarm/annex-swarm/internal/home"
	"github.com/annex-swarm/annex-swarm/proto/annexremote"
)

// branchConfig is the remote's configuration as git-annex keeps it in the
// git-annex branch (GETCONFIG).
type branchConfig map[string]string

func (c branchConfig) Get(_ context.Context, name string) (string, error) { return c[name], nil }
func (c branchConfig) Set(context.Context, string, string) error          { return nil }
func (c branchConfig) GitRemoteName(context.Context) (string, error) {
	return "", annexremote.ErrUnsupported
}
func (c branchConfig) UUID(context.Context) (string, error) { return "", nil }
func (c branchConfig) Info(context.Context, string) error   { return nil }

func TestChooseHomePerHostWins(t *testing.T) {
	for _, c := range []struct {
		name             string
		env, git, legacy string
		want, from       string
	}{
		{"default", "", "", "", "", fromDefault},
		{"legacy home= still works", "", "", "/old", "/old", fromLegacy},
		{"git config wins over home=", "", "/mine", "/old", "/mine", fromGit},
		{"environment wins over both", "/env", "/mine", "/old", "/env", fromEnv},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(home.Env, c.env)
			b := &Backend{GitConfig: func(_ context.Context, key string) (string, error) {
				if key != GitConfigHome {
					t.Fatalf("asked git config for %q", key)
				}
				return c.git, nil
			}}
			got, from, err := b.chooseHome(context.Background(), branchConfig{"home": c.legacy})
			if err != nil || got != c.want || from != c.from {
				t.Fatalf("chooseHome = %q from %q, %v; want %q from %q", got, from, err, c.want, c.from)
			}
		})
	}
}

// TestGitConfigReadsTheRepository reads the setting with the real git from
// the working directory, as git-annex runs the remote.
func TestGitConfigReadsTheRepository(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	t.Chdir(dir)
	if out, err := exec.Command("git", "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	t.Setenv("GIT_CONFIG_GLOBAL", "/dev/null")
	if v, err := gitConfig(context.Background(), GitConfigHome); err != nil || v != "" {
		t.Fatalf("unset key: %q, %v", v, err)
	}
	if out, err := exec.Command("git", "config", GitConfigHome, "/srv/swarm home").CombinedOutput(); err != nil {
		t.Fatalf("git config: %v %s", err, out)
	}
	if v, err := gitConfig(context.Background(), GitConfigHome); err != nil || v != "/srv/swarm home" {
		t.Fatalf("set key: %q, %v", v, err)
	}
}
