// Package sdnotify tells systemd about a service's state (sd_notify(3)): one
// datagram of newline-separated VAR=VALUE lines to the unix socket that
// $NOTIFY_SOCKET names. It is what a Type=notify unit waits for.
package sdnotify

import (
	"fmt"
	"net"
	"os"
)

// Common states.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Socket returns the socket systemd named in the environment, or "".
func Socket() string { return os.Getenv("NOTIFY_SOCKET") }

// Notify sends state to socket; an empty socket (not run by systemd) does
// nothing. A leading '@' names an abstract socket, as in sd_notify(3).
func Notify(socket, state string) error {
	if socket == "" {
		return nil
	}
	name := socket
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying systemd at %s: %w", socket, err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("notifying systemd at %s: %w", socket, err)
	}
	return nil
}
