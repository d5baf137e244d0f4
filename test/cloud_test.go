package test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestCloudMember runs a daemon whose store lives in a webdav account
// behind rclone (docs/CLOUD.md): put and get through the CLI, the objects
// in the account, status naming the backend; then the host is lost and a
// new home with the same identity key, config and remote rebuilds the
// index from the account and serves every content byte for byte.
func TestCloudMember(t *testing.T) {
	w := rclonetest.Start(t)
	config := fmt.Sprintf("listen = [\"/ip4/127.0.0.1/tcp/0\"]\n\n[store]\nbackend = \"rclone\"\nremote = \"%s:member1\"\nrclone_config = %q\n",
		rclonetest.RemoteName, w.Config)
	n := harness.NewNode(t, bin, "cloud", harness.Options{Config: config})
	dir := t.TempDir()
	sizes := []int64{6 << 20, 200 << 10, 1}
	roots := make([]string, len(sizes))
	sums := make([][32]byte, len(sizes))
	for i, size := range sizes {
		src := filepath.Join(dir, fmt.Sprintf("src%d", i))
		sums[i] = writeRandomFile(t, src, size, uint64(70+i))
		roots[i] = harness.LastLine(n.MustCLI("put", src))
	}
	for i, root := range roots {
		out := filepath.Join(dir, "out-"+root)
		n.MustCLI("get", root, "-o", out)
		if fileSHA256(t, out) != sums[i] {
			t.Fatalf("content %d differs", i)
		}
	}
	manifests, _ := filepath.Glob(filepath.Join(w.Dir, "member1", "manifests", "*", "*"))
	if len(manifests) != len(sizes) {
		t.Fatalf("%d manifest objects in the account, want %d", len(manifests), len(sizes))
	}
	if chunks, _ := filepath.Glob(filepath.Join(n.Home, "store", "chunks", "*", "*")); len(chunks) != 0 {
		t.Fatalf("%d chunk files in the home, want none", len(chunks))
	}
	st := n.StatusJSON()
	if st.Store.Backend != "rclone:"+rclonetest.RemoteName+":member1" || st.Store.Error != "" || st.Store.Manifests != int64(len(sizes)) {
		t.Fatalf("status store = %+v", st.Store)
	}
	if r := n.CLI("fsck"); r.Code != 0 {
		t.Fatalf("fsck: exit %d: %s%s", r.Code, r.Stdout, r.Stderr)
	}
	peer := st.PeerID
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}

	// The replacement host: the identity key and config.toml copied, no
	// store folder.
	m := harness.NewNode(t, bin, "replacement", harness.Options{Config: config})
	if err := m.Stop(); err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(n.Home, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(m.Home, "identity.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(m.Home, "store")); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatalf("replacement did not start: %v", err)
	}
	if log, _ := os.ReadFile(m.LogPath()); !strings.Contains(string(log), "rebuilt from the stored objects") {
		t.Fatalf("replacement did not rebuild its index:\n%s", m.LogTail(30))
	}
	if got := m.StatusJSON().PeerID; got != peer {
		t.Fatalf("replacement is peer %s, want the member's %s", got, peer)
	}
	for i, root := range roots {
		out := filepath.Join(dir, "again-"+root)
		m.MustCLI("get", root, "-o", out)
		if fileSHA256(t, out) != sums[i] {
			t.Fatalf("content %d differs on the replacement", i)
		}
	}
}
