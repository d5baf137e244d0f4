package demo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/daemon/localswarm"
)

// ErrNoGitAnnex is returned when git-annex is not installed.
var ErrNoGitAnnex = errors.New("git-annex is not installed; install it with: sudo apt-get install -y git-annex (Debian/Ubuntu), then run the demo again")

// checkGitAnnex fails early, before any daemon starts, when git-annex or the
// special remote program is missing.
func checkGitAnnex() (remoteDir string, err error) {
	if _, err := exec.LookPath("git-annex"); err != nil {
		return "", ErrNoGitAnnex
	}
	remote, err := localswarm.FindBinary("git-annex-remote-swarm")
	if err != nil {
		return "", err
	}
	return filepath.Dir(remote), nil
}

// annexStory is the git-annex half of the demo: copy --to swarm, watch the
// copies reach the target, lose a host, watch the repair, drop and get back.
func (r *run) annexStory(ctx context.Context, remoteDir string) error {
	laptop := r.nodes[0]
	repo := filepath.Join(r.dir, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		return err
	}
	env := append(os.Environ(),
		"PATH="+remoteDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"GIT_AUTHOR_NAME=annex-swarm demo", "GIT_AUTHOR_EMAIL=demo@annex-swarm.invalid",
		"GIT_COMMITTER_NAME=annex-swarm demo", "GIT_COMMITTER_EMAIL=demo@annex-swarm.invalid")
	git := func(args ...string) error {
		r.say("$ git %s", strings.Join(args, " "))
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir, cmd.Env = repo, env
		cmd.Stdout, cmd.Stderr = r.o.Out, r.o.Out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return nil
	}

	r.step("a git-annex repository on the laptop, with the swarm as a special remote")
	for _, args := range [][]string{
		{"init", "-q"},
		{"annex", "init", "laptop"},
		{"config", "annex-swarm.home", laptop.Home},
		{"annex", "initremote", "swarm", "type=external", "externaltype=swarm", "encryption=none"},
		{"annex", "numcopies", "1"},
	} {
		if err := git(args...); err != nil {
			return err
		}
	}
	file := filepath.Join(repo, "holiday.mov")
	if err := writeRandom(file, r.o.FileSize); err != nil {
		return err
	}
	if err := git("annex", "add", "holiday.mov"); err != nil {
		return err
	}
	if err := git("commit", "-q", "-m", "add holiday.mov"); err != nil {
		return err
	}

	r.step("git annex copy --to swarm: the laptop uploads one copy; it returns at copies_min")
	if err := git("annex", "copy", "--to", "swarm", "holiday.mov"); err != nil {
		return err
	}
	root, err := rootOf(func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.Output()
		return string(out), err
	}, file)
	if err != nil {
		return fmt.Errorf("finding the content's CID: %w", err)
	}
	r.step("the hosts copy it among themselves until the target")
	holders, err := r.watchCopies(ctx, laptop, root, nil)
	if err != nil {
		return err
	}
	st, err := laptop.Client().Status(ctx)
	if err != nil {
		return err
	}
	r.say("the laptop sent %d MiB in all for a %d MiB file", st.BytesSent>>20, r.o.FileSize>>20)

	victim := r.node(holders[0].Name)
	r.step("kill -9 %s, one of the holders; the others restore the count after repair_after", victim.Name)
	victim.Kill()
	if _, err := r.watchCopies(ctx, laptop, root, victim); err != nil {
		return err
	}

	r.step("drop the laptop's copy and get it back from the swarm (many hosts at once)")
	for _, args := range [][]string{
		{"annex", "drop", "holiday.mov"},
		{"annex", "get", "--from", "swarm", "holiday.mov"},
		{"annex", "fsck", "holiday.mov"},
		{"annex", "whereis", "holiday.mov"},
	} {
		if err := git(args...); err != nil {
			return err
		}
	}
	return nil
}

// rootOf finds the CID under which the swarm holds file: the special remote
// records it as the key's state, which git-annex keeps in its branch as
// KEY.log.rmt, one "TIMESTAMP UUID VALUE" line per remote.
func rootOf(git func(...string) (string, error), file string) (string, error) {
	key, err := git("annex", "lookupkey", filepath.Base(file))
	if err != nil {
		return "", fmt.Errorf("looking up the key of %s: %w", file, err)
	}
	path, err := git("annex", "examinekey", "--format=${hashdirlower}${key}.log.rmt", strings.TrimSpace(key))
	if err != nil {
		return "", fmt.Errorf("finding the state log of %s: %w", key, err)
	}
	log, err := git("show", "git-annex:"+strings.TrimSpace(path))
	if err != nil {
		return "", fmt.Errorf("reading the state log of %s: %w", key, err)
	}
	var root string
	for _, line := range strings.Split(log, "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			root = f[2]
		}
	}
	if root == "" {
		return "", fmt.Errorf("the state log of %s names no CID", key)
	}
	return root, nil
}

func (r *run) node(name string) *localswarm.Node {
	for _, n := range r.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// watchCopies prints the holders of root as they change until the target is
// reached without the dead node among them (bounded to two minutes).
func (r *run) watchCopies(ctx context.Context, from *localswarm.Node, root string, dead *localswarm.Node) ([]client.Holder, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	last := ""
	for {
		w, err := from.Client().Where(ctx, root)
		if err != nil {
			return nil, err
		}
		var names []string
		alive := 0
		for _, h := range w.Holders {
			names = append(names, h.Name)
			if dead == nil || h.PeerID != dead.PeerID {
				alive++
			}
		}
		line := fmt.Sprintf("copies %d/%d: %s", alive, w.Target, strings.Join(names, " "))
		if line != last {
			r.say("%s  (%s)", line, time.Now().Format("15:04:05"))
			last = line
		}
		if alive >= w.Target {
			return w.Holders, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("the copies did not reach the target within two minutes: %s", line)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
