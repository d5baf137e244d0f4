package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksOnlyTheClient: the CLI and the special remote link the control
// API client and small packages, never the daemon's libp2p, QUIC or bbolt
// (issue 14; sizes and start-up time in docs/PERFORMANCE.md).
func TestLinksOnlyTheClient(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command("go", "list", "-deps", "../annex-swarm", "../git-annex-remote-swarm").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		banned := strings.HasPrefix(pkg, "github.com/libp2p/") || strings.HasPrefix(pkg, "github.com/quic-go/") ||
			strings.HasPrefix(pkg, "go.etcd.io/bbolt")
		switch strings.TrimPrefix(pkg, "github.com/annex-swarm/annex-swarm/") {
		case "daemon", "chunk", "swarm":
			banned = true
		}
		if banned {
			t.Errorf("the CLI or the remote links %s", pkg)
		}
	}
}
