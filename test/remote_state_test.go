package test

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestRemoteRemembersKeyState drives a real git-annex-remote-swarm (this
// test playing git-annex) on a one-member swarm: a CID the remote set or
// read is not asked of git-annex again, an empty state always is, and a
// remembered CID still goes to the daemon, so a content removed behind
// the remote's back is reported absent (docs/ANNEX-REMOTE.md "Key state").
func TestRemoteRemembersKeyState(t *testing.T) {
	c := harness.New(t, bin, 1, fastSync)
	c.FormSwarm(t, harness.SwarmOptions{Copies: 1, CopiesMin: 1})
	rp := startRemote(t, c.Nodes[0].Home)
	defer rp.close()
	path := filepath.Join(t.TempDir(), "f")
	sum := writeRandomFile(t, path, 4<<10, 31)
	key := fmt.Sprintf("SHA256E-s%d--%s.bin", 4<<10, hex.EncodeToString(sum[:]))
	must := func(line, want string) {
		t.Helper()
		if err := rp.request(line, want); err != nil {
			t.Fatal(err)
		}
	}
	asks := func(what string, want int) {
		t.Helper()
		if rp.asked != want {
			t.Fatalf("%s: the remote asked GETSTATE %d times in all, want %d", what, rp.asked, want)
		}
	}

	must("CHECKPRESENT "+key, "CHECKPRESENT-FAILURE")
	must("CHECKPRESENT "+key, "CHECKPRESENT-FAILURE")
	asks("an empty state", 2)
	must("TRANSFER STORE "+key+" "+path, "TRANSFER-SUCCESS")
	if rp.state[key] == "" {
		t.Fatal("STORE set no state")
	}
	must("CHECKPRESENT "+key, "CHECKPRESENT-SUCCESS")
	must("TRANSFER RETRIEVE "+key+" "+filepath.Join(t.TempDir(), "got"), "TRANSFER-SUCCESS")
	asks("the CID the remote set", 2)

	// Removed behind the remote's back (another clone's drop): the
	// remembered CID is checked with the daemon, which says absent.
	if _, err := c.Nodes[0].Client().Remove(t.Context(), rp.state[key]); err != nil {
		t.Fatal(err)
	}
	must("CHECKPRESENT "+key, "CHECKPRESENT-FAILURE")
	asks("a removed content", 2)

	// Its own REMOVE clears the state and forgets the CID.
	must("TRANSFER STORE "+key+" "+path, "TRANSFER-SUCCESS")
	must("REMOVE "+key, "REMOVE-SUCCESS")
	if _, ok := rp.state[key]; ok {
		t.Fatal("REMOVE left the state set")
	}
	must("CHECKPRESENT "+key, "CHECKPRESENT-FAILURE")
	asks("after REMOVE", 3)

	// A fresh process has nothing remembered: it reads the state once.
	must("TRANSFER STORE "+key+" "+path, "TRANSFER-SUCCESS")
	rp2 := startRemote(t, c.Nodes[0].Home)
	defer rp2.close()
	rp2.state[key] = rp.state[key]
	for range 3 {
		if err := rp2.request("CHECKPRESENT "+key, "CHECKPRESENT-SUCCESS"); err != nil {
			t.Fatal(err)
		}
	}
	if rp2.asked != 1 {
		t.Fatalf("a new remote asked GETSTATE %d times for three CHECKPRESENTs, want 1", rp2.asked)
	}
}
