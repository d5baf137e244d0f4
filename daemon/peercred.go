package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"

	"golang.org/x/sys/unix"
)

// Who may use the control socket (docs/CLI.md "Control socket"): the
// socket is created mode 0600, and on top of that every connection's peer
// credentials (SO_PEERCRED) are checked: only the user the daemon runs as,
// and root, are served. put and get name files by path and the daemon
// opens them; since only its own user (or root, who may read anything) is
// served, the daemon never opens a path with rights its caller does not
// have, even when the socket's mode or its folder's was loosened by hand.

// peerKey is the context key of a connection's peer credentials.
type peerKey struct{}

// peerCred is what the kernel says of the process at the other end of a
// control connection.
type peerCred struct {
	uid uint32
	err error // SO_PEERCRED could not be read
}

// withPeerCred is an http.Server ConnContext: it reads the peer
// credentials of a Unix socket connection into the context.
func withPeerCred(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, readPeerCred(c))
}

// readPeerCred reads SO_PEERCRED of a Unix socket connection.
func readPeerCred(c net.Conn) peerCred {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peerCred{err: fmt.Errorf("not a Unix socket connection (%T)", c)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peerCred{err: err}
	}
	var cred *unix.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peerCred{err: err}
	}
	if serr != nil {
		return peerCred{err: serr}
	}
	return peerCred{uid: cred.Uid}
}

// errPeer is wrapped by the refusals of peerAllowed.
var errPeer = errors.New("control socket")

// peerAllowed says whether a client with credentials pc may use the
// control API of a daemon running as uid self.
func peerAllowed(pc peerCred, self uint32) error {
	if pc.err != nil {
		return fmt.Errorf("%w: reading the client's credentials: %v", errPeer, pc.err)
	}
	if pc.uid != self && pc.uid != 0 {
		return fmt.Errorf("%w: the daemon serves only uid %d (its own user) and root; this client runs as uid %d", errPeer, self, pc.uid)
	}
	return nil
}

// peerGate refuses, with 403 and one line, requests from clients that
// peerAllowed refuses.
func peerGate(next http.Handler) http.Handler {
	self := uint32(os.Getuid())
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pc, ok := r.Context().Value(peerKey{}).(peerCred)
		if !ok {
			pc = peerCred{err: errors.New("no credentials recorded for the connection")}
		}
		if err := peerAllowed(pc, self); err != nil {
			writeError(w, http.StatusForbidden, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
