package harness

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// NewNodeIn is NewNode for a daemon that runs inside the network namespace
// ns (its full name, as `ip netns list` shows it), started through
// `ip netns exec`. The control socket is a file in the home, so the CLI
// reaches the daemon from outside the namespace. Listen on the namespace's
// addresses with --listen flags in o.Args.
func NewNodeIn(t testing.TB, bin Binaries, name, ns string, o Options) *Node {
	t.Helper()
	daemon := bin.Daemon
	if o.Fault {
		daemon = bin.FaultDaemon
	}
	wrapper := filepath.Join(t.TempDir(), name+"-in-netns.sh")
	script := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %q %q \"$@\"\n", ns, daemon)
	if err := os.WriteFile(wrapper, []byte(script), 0o700); err != nil {
		t.Fatalf("writing the netns wrapper of %s: %v", name, err)
	}
	b := bin
	b.Daemon, b.FaultDaemon = wrapper, wrapper
	return NewNode(t, b, name, o)
}
