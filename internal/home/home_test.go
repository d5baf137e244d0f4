package home

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestResolveOrder(t *testing.T) {
	t.Setenv(Env, "")
	t.Setenv("HOME", "/home/u")
	for _, c := range []struct{ flag, env, want string }{
		{"", "", "/home/u/.annex-swarm"},
		{"", "/srv/env", "/srv/env"},
		{"/srv/flag", "/srv/env", "/srv/flag"},
	} {
		t.Setenv(Env, c.env)
		h, err := Resolve(c.flag)
		if err != nil || h.Dir != c.want {
			t.Errorf("Resolve(%q) with $%s=%q = %q, %v; want %q", c.flag, Env, c.env, h.Dir, err, c.want)
		}
	}
	t.Setenv(Env, "")
	h, err := Resolve("rel")
	if err != nil || !filepath.IsAbs(h.Dir) {
		t.Errorf("Resolve(rel) = %q, %v; want an absolute path", h.Dir, err)
	}
}

func TestDaemonInfoRoundTrip(t *testing.T) {
	h := Home{Dir: t.TempDir()}
	if _, ok := ReadDaemonInfo(h); ok {
		t.Fatal("info read from a home without a lock file")
	}
	want := DaemonInfo{PID: 4242, Log: "/var/log/annex swarm.log"}
	if err := os.WriteFile(h.LockPath(), FormatDaemonInfo(want), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := ReadDaemonInfo(h); !ok || got != want {
		t.Fatalf("ReadDaemonInfo = %+v, %v; want %+v", got, ok, want)
	}
	if got := FormatDaemonInfo(DaemonInfo{PID: 1, Log: "a\nlog 0"}); strings.Count(string(got), "\n") != 2 {
		t.Fatalf("a newline in the log place breaks the format: %q", got)
	}
}

// TestStderrLogNamesAFile: a process whose stderr is a file names that
// file as its log, and /dev/null as nowhere.
func TestStderrLogNamesAFile(t *testing.T) {
	if _, err := os.Readlink("/proc/self/fd/2"); err != nil {
		t.Skip("no /proc/self/fd")
	}
	logFile := filepath.Join(t.TempDir(), "daemon.log")
	for _, c := range []struct{ path, want string }{
		{logFile, logFile},
		{os.DevNull, "nowhere (its standard error was /dev/null)"},
	} {
		f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		saved, err := syscall.Dup(2)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Dup3(int(f.Fd()), 2, 0); err != nil {
			t.Fatal(err)
		}
		got := StderrLog()
		if err := syscall.Dup3(saved, 2, 0); err != nil {
			t.Fatal(err)
		}
		syscall.Close(saved)
		f.Close()
		if got != c.want {
			t.Errorf("stderr on %s: StderrLog = %q, want %q", c.path, got, c.want)
		}
	}
}

func FuzzParseDaemonInfo(f *testing.F) {
	f.Add([]byte("pid 12\nlog /x/daemon.log\n"))
	f.Add([]byte("pid -1\nlog \n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		di, ok := parseDaemonInfo(b)
		if ok && (di.PID <= 0 || di.Log == "" || len(di.Log) > maxInfo) {
			t.Fatalf("accepted %+v from %q", di, b)
		}
		if ok {
			again, ok2 := parseDaemonInfo(FormatDaemonInfo(di))
			if !ok2 || again.PID != di.PID {
				t.Fatalf("%+v does not round-trip", di)
			}
		}
	})
}
