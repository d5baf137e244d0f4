// Package rclonetest runs a real `rclone serve webdav` on loopback, with a
// password, standing in for a cloud account in tests, and writes the rclone
// configuration that reaches it.
package rclonetest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// RemoteName is the name of the webdav remote in the written config; the
// crypt remote over it is CryptName.
const (
	RemoteName = "dav"
	CryptName  = "secret"
)

// WebDAV is a running `rclone serve webdav` over a temporary folder.
type WebDAV struct {
	// Dir is the folder the server serves: the account's contents.
	Dir string
	// Config is the rclone config file with the remotes RemoteName (the
	// server) and CryptName (a crypt remote over RemoteName:crypt).
	Config string
	// Addr is host:port the server listens on.
	Addr string

	t    testing.TB
	user string
	pass string
	cmd  *exec.Cmd
	done chan struct{}
}

// Need skips the test when rclone is not installed.
func Need(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rclone")
	if err != nil {
		t.Skip("rclone not installed (apt-get install rclone): the cloud backend tests need it")
	}
	return p
}

// Start starts the server on a random loopback port and writes the config;
// the server is stopped when the test ends.
func Start(t testing.TB) *WebDAV {
	t.Helper()
	Need(t)
	tmp := t.TempDir()
	w := &WebDAV{Dir: filepath.Join(tmp, "account"), Config: filepath.Join(tmp, "rclone.conf"),
		t: t, user: "annex", pass: "webdav-pass-" + fmt.Sprint(time.Now().UnixNano())}
	if err := os.MkdirAll(w.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.Addr = l.Addr().String()
	l.Close()
	w.writeConfig()
	w.StartServer()
	t.Cleanup(w.StopServer)
	return w
}

func (w *WebDAV) writeConfig() {
	obscure := func(s string) string {
		out, err := exec.Command("rclone", "obscure", s).Output()
		if err != nil {
			w.t.Fatalf("rclone obscure: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	conf := fmt.Sprintf(`[%s]
type = webdav
url = http://%s/
vendor = other
user = %s
pass = %s

[%s]
type = crypt
remote = %s:crypt
password = %s
password2 = %s
`, RemoteName, w.Addr, w.user, obscure(w.pass), CryptName, RemoteName, obscure("crypt-password"), obscure("crypt-salt"))
	if err := os.WriteFile(w.Config, []byte(conf), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// StartServer starts the server (again) on Addr and waits until it accepts
// connections.
func (w *WebDAV) StartServer() {
	w.t.Helper()
	cmd := exec.Command("rclone", "serve", "webdav", "--addr", w.Addr, "--user", w.user, "--pass", w.pass, w.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		w.t.Fatalf("starting rclone serve webdav: %v", err)
	}
	w.cmd, w.done = cmd, make(chan struct{})
	go func(done chan struct{}) {
		cmd.Wait()
		close(done)
	}(w.done)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", w.Addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-w.done:
			w.t.Fatalf("rclone serve webdav exited: %v", cmd.ProcessState)
		default:
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("rclone serve webdav not listening on %s after 20s", w.Addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// StopServer kills the server, as an account that goes away, and waits
// for it to exit.
func (w *WebDAV) StopServer() {
	if w.cmd == nil {
		return
	}
	w.cmd.Process.Kill()
	select {
	case <-w.done:
	case <-time.After(10 * time.Second):
		w.t.Errorf("rclone serve webdav did not exit")
	}
	w.cmd = nil
}
