package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPeerAllowed(t *testing.T) {
	for _, c := range []struct {
		pc   peerCred
		self uint32
		ok   bool
	}{
		{peerCred{uid: 1000}, 1000, true},
		{peerCred{uid: 0}, 1000, true},
		{peerCred{uid: 0}, 0, true},
		{peerCred{uid: 1001}, 1000, false},
		{peerCred{uid: 65534}, 0, false},
		{peerCred{uid: 1000, err: errors.New("no creds")}, 1000, false},
	} {
		err := peerAllowed(c.pc, c.self)
		if (err == nil) != c.ok {
			t.Errorf("peerAllowed(%+v, %d) = %v, want allowed %v", c.pc, c.self, err, c.ok)
		}
		if err != nil && c.pc.err == nil && !strings.Contains(err.Error(), fmt.Sprintf("uid %d", c.pc.uid)) {
			t.Errorf("refusal %q does not name the client's uid", err)
		}
	}
}

// peerChildEnv names the socket the child process of
// TestControlSocketRefusesOtherUsers asks.
const peerChildEnv = "ANNEX_SWARM_PEERCRED_SOCKET"

// TestPeerCredChild is the child of TestControlSocketRefusesOtherUsers:
// it asks the socket once and prints the status and the body.
func TestPeerCredChild(t *testing.T) {
	sock := os.Getenv(peerChildEnv)
	if sock == "" {
		t.Skip("run by TestControlSocketRefusesOtherUsers")
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://daemon/v1/status")
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Printf("status %d %s\n", resp.StatusCode, strings.TrimSpace(string(b)))
}

// A control socket whose mode was loosened by hand still serves only the
// daemon's own user and root: a client running as another user (nobody)
// gets a one-line 403 that says why, and nothing behind the gate runs.
func TestControlSocketRefusesOtherUsers(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir, err := os.MkdirTemp("", "peercred")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "control.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sock, 0o666); err != nil { // loosened by hand
		t.Fatal(err)
	}
	served := make(chan struct{}, 4)
	srv := &http.Server{
		Handler: peerGate(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			served <- struct{}{}
			fmt.Fprintln(w, `{"ok":true}`)
		})),
		ConnContext:       withPeerCred,
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(ln)
	defer srv.Close()

	// The test binary, copied where nobody may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "child.test")
	if err := os.WriteFile(child, b, 0o755); err != nil {
		t.Fatal(err)
	}
	ask := func(cred *syscall.Credential) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, child, "-test.run=^TestPeerCredChild$", "-test.v")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), peerChildEnv+"="+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("child: %v\n%s", err, out)
		}
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "status ") || strings.HasPrefix(l, "error:") {
				return l
			}
		}
		t.Fatalf("child printed no answer:\n%s", out)
		return ""
	}
	got := ask(&syscall.Credential{Uid: 65534, Gid: 65534})
	if !strings.HasPrefix(got, "status 403 ") || !strings.Contains(got, "serves only uid 0") || !strings.Contains(got, "uid 65534") {
		t.Fatalf("a client running as nobody got %q, want a 403 that names both uids", got)
	}
	select {
	case <-served:
		t.Fatal("the handler behind the gate ran for a refused client")
	default:
	}
	if got := ask(nil); !strings.HasPrefix(got, "status 200 ") {
		t.Fatalf("a client running as the daemon's user got %q, want 200", got)
	}
}
