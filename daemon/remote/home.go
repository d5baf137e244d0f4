package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/annex-swarm/annex-swarm/internal/home"
	"github.com/annex-swarm/annex-swarm/proto/annexremote"
)

// GitConfigHome is the git config key, set in the repository on each host,
// that names the daemon home the special remote uses there
// (docs/ANNEX-REMOTE.md "Which daemon").
const GitConfigHome = "annex-swarm.home"

// gitConfigTimeout bounds the `git config` lookup.
const gitConfigTimeout = 10 * time.Second

// The home is chosen per host: the first of these that is set wins.
const (
	fromEnv     = "$" + home.Env
	fromGit     = "git config " + GitConfigHome
	fromLegacy  = "home= of initremote (shared by every clone)"
	fromDefault = "the default home"
)

// chooseHome picks the daemon home for this repository on this host:
// $ANNEX_SWARM_HOME, else the repository's git config annex-swarm.home, else
// the home= setting that older setups stored in the git-annex branch, else
// the default home. It returns the folder ("" for the default) and where it
// came from.
func (b *Backend) chooseHome(ctx context.Context, cfg annexremote.Config) (dir, from string, err error) {
	if v := os.Getenv(home.Env); v != "" {
		return v, fromEnv, nil
	}
	look := b.GitConfig
	if look == nil {
		look = readOrRunGitConfig
	}
	v, err := look(ctx, GitConfigHome)
	if err != nil {
		return "", "", err
	}
	if v != "" {
		return v, fromGit, nil
	}
	if v, err = cfg.Get(ctx, "home"); err != nil {
		return "", "", err
	}
	if v != "" {
		return v, fromLegacy, nil
	}
	return "", fromDefault, nil
}

// readOrRunGitConfig reads key from the config files git reads when they
// are plain (gitconfig.go), else runs git.
func readOrRunGitConfig(ctx context.Context, key string) (string, error) {
	if v, err := readGitConfig(".", key); err == nil {
		return v, nil
	}
	return gitConfig(ctx, key)
}

// gitConfig reads key from the git config of the repository git-annex runs
// the remote in (its working directory); "" when it is not set.
func gitConfig(ctx context.Context, key string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gitConfigTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "git", "config", "--get", key).Output()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(string(out)), nil
	case errors.As(err, &ee) && ee.ExitCode() == 1: // the key is not set
		return "", nil
	case errors.Is(err, exec.ErrNotFound):
		return "", nil // no git: no repository setting either
	}
	return "", fmt.Errorf("reading git config %s: %w", key, err)
}
