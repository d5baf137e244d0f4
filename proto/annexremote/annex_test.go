package annexremote

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// annexEnv is a throwaway git-annex repository whose PATH holds the test
// binary as git-annex-remote-fakeswarm (ASYNC) and git-annex-remote-fakesync
// (no ASYNC).
type annexEnv struct {
	t          *testing.T
	ctx        context.Context
	repo       string
	env        []string
	transcript string
}

func newAnnexEnv(t *testing.T, ctx context.Context) *annexEnv {
	t.Helper()
	if _, err := exec.LookPath("git-annex"); err != nil {
		t.Skip("git-annex is not installed: skipping the check against the real git-annex")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	bin := filepath.Join(tmp, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	transcript := filepath.Join(tmp, "transcript.txt")
	for name, noAsync := range map[string]string{"fakeswarm": "0", "fakesync": "1"} {
		script := fmt.Sprintf("#!/bin/sh\n%s=1 %s=%s %s=%q exec %q \"$@\"\n",
			envRemote, envNoAsync, noAsync, envTranscript, transcript, self)
		if err := os.WriteFile(filepath.Join(bin, "git-annex-remote-"+name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	home := filepath.Join(tmp, "home")
	repo := filepath.Join(tmp, "repo")
	for _, d := range []string{home, repo} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e := &annexEnv{t: t, ctx: ctx, repo: repo, transcript: transcript}
	e.env = append(os.Environ(),
		"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "LC_ALL=C.UTF-8")
	e.run(repo, "git", "init", "-q")
	e.run(repo, "git", "config", "user.name", "annexremote test")
	e.run(repo, "git", "config", "user.email", "test@example.invalid")
	e.run(repo, "git", "annex", "init", "-q", "test")
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(transcript); err == nil {
				s := string(b)
				if len(s) > 8000 {
					s = "...\n" + s[len(s)-8000:]
				}
				t.Logf("protocol transcript:\n%s", s)
			}
		}
	})
	return e
}

// run runs a command in dir and returns its combined output; it fails the
// test if the command fails.
func (e *annexEnv) run(dir string, name string, args ...string) string {
	e.t.Helper()
	cmd := exec.CommandContext(e.ctx, name, args...)
	cmd.Dir, cmd.Env = dir, e.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRealGitAnnex checks the protocol against the installed git-annex:
// `git annex testremote` with and without ASYNC, then copy/drop/get with
// -J4 of files with spaces, from a subdirectory.
func TestRealGitAnnex(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	e := newAnnexEnv(t, ctx)
	store := filepath.Join(t.TempDir(), "store")
	storeSync := filepath.Join(t.TempDir(), "store")
	e.run(e.repo, "git", "annex", "initremote", "fake", "type=external", "externaltype=fakeswarm",
		"encryption=none", "directory="+store)
	// enableremote sends INITREMOTE again: it must be idempotent.
	e.run(e.repo, "git", "annex", "enableremote", "fake")
	e.run(e.repo, "git", "annex", "initremote", "fakesync", "type=external", "externaltype=fakesync",
		"encryption=none", "directory="+storeSync)

	t.Run("testremote-fast-async", func(t *testing.T) {
		e.run(e.repo, "git", "annex", "testremote", "fake", "--fast")
	})
	t.Run("testremote-fast-sync", func(t *testing.T) {
		e.run(e.repo, "git", "annex", "testremote", "fakesync", "--fast")
	})
	t.Run("testremote-full-async", func(t *testing.T) {
		if testing.Short() {
			t.Skip("full testremote skipped in -short mode")
		}
		e.run(e.repo, "git", "annex", "testremote", "fake")
	})

	t.Run("copy-get-J4", func(t *testing.T) {
		sub := filepath.Join(e.repo, "sub dir")
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		var names []string
		for i := range 8 {
			name := fmt.Sprintf("file %d with  spaces.bin", i)
			data := strings.Repeat(fmt.Sprintf("content %d\n", i), 1000*(i+1))
			if err := os.WriteFile(filepath.Join(sub, name), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
			names = append(names, name)
		}
		e.run(sub, "git", "annex", "add", ".")
		e.run(sub, "git", "commit", "-q", "-m", "add")
		e.run(sub, "git", "annex", "copy", "-J4", "--to", "fake", ".")
		e.run(sub, "git", "annex", "drop", "-J4", ".")
		for _, n := range names {
			if _, err := os.Stat(filepath.Join(sub, n)); err == nil {
				t.Fatalf("%s still has content after drop", n)
			}
		}
		e.run(sub, "git", "annex", "get", "-J4", "--from", "fake", ".")
		for i, n := range names {
			b, err := os.ReadFile(filepath.Join(sub, n))
			if err != nil {
				t.Fatalf("after get: %v", err)
			}
			if want := strings.Repeat(fmt.Sprintf("content %d\n", i), 1000*(i+1)); string(b) != want {
				t.Fatalf("%s: got %d bytes back, want %d", n, len(b), len(want))
			}
		}
		where := e.run(sub, "git", "annex", "whereis", names[0])
		if !strings.Contains(where, "fake: file "+store) {
			t.Errorf("whereis does not show the WHEREIS answer:\n%s", where)
		}
		info := e.run(e.repo, "git", "annex", "info", "fake")
		if !strings.Contains(info, "directory: "+store) {
			t.Errorf("info does not show the GETINFO field:\n%s", info)
		}
		e.run(sub, "git", "annex", "fsck", "-J4", "--fast", "--from", "fake", ".")
		e.run(sub, "git", "annex", "drop", "-J4", "--from", "fake", ".")
		if left, _ := filepath.Glob(filepath.Join(store, "*")); len(left) != 0 {
			t.Errorf("drop --from left %d files in the store: %v", len(left), left)
		}
		tr, err := os.ReadFile(e.transcript)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(tr), "> J 2 ") {
			t.Errorf("no second async job seen in the transcript: -J4 did not share one process")
		}
	})
}
