package sdnotify

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// listen opens a real unixgram socket, as systemd does for a notify unit.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func read(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotifyPathSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c := listen(t, sock)
	if err := Notify(sock, Ready+"\nSTATUS=serving"); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != "READY=1\nSTATUS=serving" {
		t.Errorf("got %q", got)
	}
	if err := Notify(sock, Stopping); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != Stopping {
		t.Errorf("got %q", got)
	}
}

func TestNotifyAbstractSocket(t *testing.T) {
	name := "annex-swarm-test-" + strings.ReplaceAll(t.Name(), "/", "-") + time.Now().Format("150405.000000")
	c := listen(t, "\x00"+name)
	if err := Notify("@"+name, Ready); err != nil {
		t.Fatal(err)
	}
	if got := read(t, c); got != Ready {
		t.Errorf("got %q", got)
	}
}

func TestNotifyNoSocket(t *testing.T) {
	if err := Notify("", Ready); err != nil {
		t.Errorf("without a socket: %v", err)
	}
	if err := Notify(filepath.Join(t.TempDir(), "absent"), Ready); err == nil {
		t.Error("a missing socket gave no error")
	}
}
