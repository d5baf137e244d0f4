package test

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/localswarm"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// unitsFor copies the shipped units into a temporary folder with ExecStart
// pointing at the built daemon (systemd-analyze checks that it exists).
func unitsFor(t *testing.T, edit func(string) string) string {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"annex-swarmd.service", "annex-swarmd@.service"} {
		b, err := os.ReadFile(filepath.Join(root, "dist", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/local/bin/annex-swarmd", bin.Daemon)
		if edit != nil {
			s = edit(s)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// verify runs systemd-analyze verify on the plain unit and an instance of
// the template; it returns the exit status and every line it printed.
func verify(t *testing.T, dir string) (int, string) {
	t.Helper()
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (apt-get install systemd): cannot verify the units")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, sa, "verify", filepath.Join(dir, "annex-swarmd.service"), filepath.Join(dir, "annex-swarmd@photos.service"))
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, strings.TrimSpace(string(out))
}

// TestSystemdUnitsVerify checks the shipped units with systemd-analyze
// verify: no error and no warning. A misspelt key is only a warning to
// systemd, so the test also checks that one is reported.
func TestSystemdUnitsVerify(t *testing.T) {
	code, out := verify(t, unitsFor(t, nil))
	if code != 0 || out != "" {
		t.Fatalf("systemd-analyze verify: exit %d\n%s", code, out)
	}
	code, out = verify(t, unitsFor(t, func(s string) string {
		return strings.Replace(s, "NoNewPrivileges=yes", "NoNewPriviliges=yes", 1)
	}))
	if !strings.Contains(out, "NoNewPriviliges") {
		t.Fatalf("a misspelt key went unreported: exit %d, %q", code, out)
	}
	for _, name := range []string{"annex-swarmd.service", "annex-swarmd@.service"} {
		b, err := os.ReadFile(filepath.Join(unitsFor(t, nil), name))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Type=notify", "NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/annex-swarm/", "PrivateTmp=yes", "--log-format json"} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s lacks %s", name, want)
			}
		}
	}
}

// TestDaemonNotifiesSystemd runs the real daemon as a Type=notify unit
// would: with NOTIFY_SOCKET naming a unixgram socket the test listens on.
// READY=1 must come only once the control socket answers, STOPPING=1 on
// SIGTERM; the JSON log must be one object a line.
func TestDaemonNotifiesSystemd(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	sock := filepath.Join(dir, "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	args := append([]string{"--home", home, "--log-format", "json"}, localswarm.LoopbackListen...)
	cmd := exec.Command(bin.Daemon, args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	defer func() { _ = cmd.Process.Kill() }()

	readMsg := func(what string) string {
		t.Helper()
		if err := ln.SetReadDeadline(time.Now().Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		return string(buf[:n])
	}
	ready := readMsg("READY=1")
	if !strings.HasPrefix(ready, "READY=1\n") || !strings.Contains(ready, "MAINPID=") {
		t.Fatalf("first notification %q", ready)
	}
	// Ready means the control socket answers now, without a retry.
	r := harness.RunCLI(bin, "--home", home, "id", "--json")
	if r.Code != 0 {
		t.Fatalf("id right after READY=1: exit %d: %s", r.Code, r.Stderr)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if got := readMsg("STOPPING=1"); got != "STOPPING=1" {
		t.Fatalf("notification on SIGTERM %q", got)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("daemon exit: %v", err)
		}
	case <-time.After(localswarm.StopTimeout):
		t.Fatal("daemon did not stop after SIGTERM")
	}
	n := 0
	for l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", l)
		}
		if rec["msg"] == nil || rec["level"] == nil {
			t.Fatalf("log record lacks msg or level: %q", l)
		}
		n++
	}
	if n < 2 {
		t.Fatalf("only %d log lines", n)
	}
}
