package remote

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadGitConfigMatchesGit writes configs into a real repository and
// compares what the reader finds with what `git config --get` prints, from
// the top and from a subfolder; plain configs are read without git, the
// others are left to it.
func TestReadGitConfigMatchesGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	dir := t.TempDir()
	if out, err := exec.Command("git", "init", "-q", dir).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v %s", err, out)
	}
	sub := filepath.Join(dir, "a", "b")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	global := filepath.Join(t.TempDir(), "global")
	t.Setenv("GIT_CONFIG_GLOBAL", global)
	t.Setenv("GIT_CONFIG_NOSYSTEM", "1")
	base, err := os.ReadFile(filepath.Join(dir, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, local, global string
		askGit              bool
	}{
		{name: "unset"},
		{name: "plain", local: "[annex-swarm]\n\thome = /srv/a\n"},
		{name: "case and comment", local: "[Annex-Swarm]\n\tHOME = /srv/b # the daemon\n"},
		{name: "quoted", local: "[annex-swarm]\nhome = \"/srv/with  space \" ; c\n"},
		{name: "escapes", local: "[annex-swarm]\nhome = \"/a\\tb\\\\c\\\"d\"\n"},
		{name: "inner whitespace", local: "[annex-swarm]\nhome = /a  b \t \n"},
		{name: "last wins", local: "[annex-swarm]\nhome = /one\n[core]\n\tx = 1\n[annex-swarm]\nhome = /two\n"},
		{name: "subsection is another key", local: "[annex-swarm \"x\"]\nhome = /no\n[annex-swarm.y]\nhome = /no\n"},
		{name: "bare key", local: "[annex-swarm]\nhome\n"},
		{name: "global only", global: "[annex-swarm]\nhome = /global\n"},
		{name: "local over global", local: "[annex-swarm]\nhome = /local\n", global: "[annex-swarm]\nhome = /global\n"},
		{name: "include", local: "[include]\npath = other\n", askGit: true},
		{name: "continuation", local: "[annex-swarm]\nhome = /a\\\n/b\n", askGit: true},
		{name: "worktree config", local: "[extensions]\nworktreeConfig = true\n", askGit: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, ".git", "config"), append(append([]byte{}, base...), c.local...), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(global, []byte(c.global), 0o644); err != nil {
				t.Fatal(err)
			}
			for _, d := range []string{dir, sub} {
				cmd := exec.Command("git", "config", "--get", GitConfigHome)
				cmd.Dir = d
				out, _ := cmd.Output()
				want := strings.TrimSuffix(string(out), "\n")
				got, err := readGitConfig(d, GitConfigHome)
				switch {
				case c.askGit && !errors.Is(err, errAskGit):
					t.Fatalf("in %s: read %q, %v; want it left to git", d, got, err)
				case c.askGit:
				case err != nil:
					t.Fatalf("in %s: %v; git says %q", d, err, want)
				case got != want:
					t.Fatalf("in %s: read %q, git says %q", d, got, want)
				}
			}
		})
	}
	t.Run("no repository", func(t *testing.T) {
		got, err := readGitConfig(t.TempDir(), GitConfigHome)
		if err != nil || got != "" {
			t.Fatalf("outside a repository: %q, %v", got, err)
		}
	})
	t.Run("-c in the environment", func(t *testing.T) {
		t.Setenv("GIT_CONFIG_PARAMETERS", "'annex-swarm.home'='/x'")
		if _, err := readGitConfig(dir, GitConfigHome); !errors.Is(err, errAskGit) {
			t.Fatalf("err = %v, want it left to git", err)
		}
	})
}

// FuzzParseGitConfig: any bytes parse or are left to git, without a panic,
// and every entry has a valid key.
func FuzzParseGitConfig(f *testing.F) {
	f.Add([]byte("[annex-swarm]\n\thome = /srv/a # c\n"))
	f.Add([]byte("[a \"b\"]\nk = \"v\\tw\" ; c\n[x.y]\nk\n"))
	f.Add([]byte("[include]\npath = x\n"))
	f.Add([]byte("\ufeff[core]\r\n\tbare = false\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > maxGitConfig {
			return
		}
		es, err := parseGitConfig(data)
		if err != nil {
			if !errors.Is(err, errAskGit) {
				t.Fatalf("error %v is not errAskGit", err)
			}
			return
		}
		for _, e := range es {
			if !validConfigName(e.key) || e.section == "" {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
