package test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// putBound is the documented bound on a put that makes no progress
// (docs/REPLICATION.md "Failure and progress"): the Ready barrier (30 s)
// and one stall bound (30 s) per storage member tried, here 4.
const putBound = 30*time.Second + 4*30*time.Second

// mountTmpfs mounts a tmpfs of size (e.g. "8m") on a fresh folder and
// unmounts it when the test ends (after the daemons that use it stop, as
// cleanups run last first). It skips the test when mounting is not
// permitted.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("this test mounts a %s tmpfs as a member's home and may not here (it needs root or CAP_SYS_ADMIN): mount: %v: %s", size, err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// weight is p's rendezvous weight for root (docs/REPLICATION.md
// "Placement"): the first 8 bytes of SHA-256(binary CID ‖ binary peer ID).
func weight(root cid.Cid, p peer.ID) uint64 {
	h := sha256.Sum256(append(root.Bytes(), []byte(p)...))
	return binary.BigEndian.Uint64(h[:8])
}

// firstIn returns the storage member placement tries first for root.
func firstIn(root cid.Cid, storage []peer.ID) peer.ID {
	return slices.MaxFunc(storage, func(a, b peer.ID) int {
		wa, wb := weight(root, a), weight(root, b)
		switch {
		case wa > wb:
			return 1
		case wa < wb:
			return -1
		}
		return 0
	})
}

// fileFirstOn writes, at path, random files of size (seeds from seed on)
// until one's CID (as stored with the git-annex key that keyOf gives, ""
// for none) is placed first on want, and returns its CID. The CID is the
// one the daemon computes: the same chunking, in a scratch store.
func fileFirstOn(t *testing.T, path string, size int64, seed uint64, want peer.ID, storage []peer.ID, keyOf func([32]byte) string) cid.Cid {
	t.Helper()
	st, err := chunk.Open(t.TempDir(), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for i := range uint64(64) {
		sum := writeRandomFile(t, path, size, seed+i)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		root, _, err := st.Put(t.Context(), f, size, keyOf(sum))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if firstIn(root, storage) == want {
			return root
		}
		if err := st.Remove(t.Context(), root); err != nil {
			t.Fatal(err)
		}
	}
	t.Fatalf("64 random files, none placed first on %s", want)
	return cid.Undef
}

// TestPutRoutesAroundFullMember is the hang of issue 10: three storage
// members, one more whose home is an 8 MiB tmpfs (no storage limit
// configured, so it accepts the placement and runs out of space in the
// middle of its fetch), and a client. A 20 MiB put on the client, of a
// content placed first on the full member, ends within the documented
// bound with copies on the healthy members; status names the full member;
// the full member keeps no partial copy; `git annex copy --to swarm` of
// another such file succeeds too.
func TestPutRoutesAroundFullMember(t *testing.T) {
	mnt := mountTmpfs(t, "8m")
	args := append(slices.Clone(replArgs), "--log-level", "info")
	var nodes []*harness.Node
	for i := range 3 {
		nodes = append(nodes, harness.NewNode(t, bin, fmt.Sprintf("s%d", i), harness.Options{Args: args}))
	}
	full := harness.NewNode(t, bin, "full", harness.Options{Args: args, Home: filepath.Join(mnt, "home")})
	laptop := harness.NewNode(t, bin, "laptop", harness.Options{Args: args})
	nodes = append(nodes, full, laptop)
	c := harness.Of(bin, nodes...)
	c.FormSwarm(t, harness.SwarmOptions{Copies: 3, CopiesMin: 2, Roles: map[int]string{4: "client"}})
	harness.WaitFor(t, 60*time.Second, "every member connected to every other", func() bool {
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b && !connectedTo(a, b.PeerID) {
					return false
				}
			}
		}
		return true
	})
	var storage []peer.ID
	for _, n := range nodes[:4] {
		id, err := peer.Decode(n.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		storage = append(storage, id)
	}
	fullID := storage[3]
	const size = 20 << 20

	// put, of a content the full member is asked for first.
	src := filepath.Join(t.TempDir(), "g.bin")
	root := fileFirstOn(t, src, size, 1000, fullID, storage, func([32]byte) string { return "" })
	start := time.Now()
	res := laptop.CLI("put", src)
	took := time.Since(start)
	if res.Code != 0 {
		t.Fatalf("put with a full member: exit %d after %v\n%s%s\nlaptop log:\n%s\nfull member's log:\n%s",
			res.Code, took, res.Stdout, res.Stderr, laptop.LogTail(40), full.LogTail(40))
	}
	if got := harness.LastLine(res.Stdout); got != root.String() {
		t.Fatalf("put printed %q, the CID computed here is %s", got, root)
	}
	t.Logf("put of 20 MiB placed first on the full member took %v (bound %v)", took, putBound)
	if took > putBound {
		t.Errorf("put took %v, over the documented bound %v", took, putBound)
	}
	if log := full.LogTail(200); !strings.Contains(log, "partial copy dropped") {
		t.Errorf("the full member did not drop its partial copy; its log:\n%s", log)
	}
	var st client.Status
	if err := json.Unmarshal([]byte(laptop.MustCLI("status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Replication == nil || !slices.Contains(st.Replication.Full, "full") {
		t.Errorf("status does not name the full member: %+v", st.Replication)
	}
	healthy := func(root string) func() bool {
		return func() bool {
			w := where(t, laptop, root)
			return len(w.Holders) == 3 && !slices.ContainsFunc(w.Holders, func(h client.Holder) bool { return h.PeerID == full.PeerID })
		}
	}
	harness.WaitFor(t, 2*time.Minute, "the three healthy members holding the put", healthy(root.String()))

	// git annex copy --to swarm, of another content the full member comes
	// first for (it is now skipped as full, or refuses again).
	requireGitAnnex(t)
	r := newRepo(t, laptop)
	name := "h.bin"
	aroot := fileFirstOn(t, filepath.Join(r.dir, name), size, 2000, fullID, storage, func(sum [32]byte) string {
		return fmt.Sprintf("SHA256E-s%d--%x.bin", size, sum)
	})
	r.run("git", "annex", "add", name)
	if key := strings.TrimSpace(r.run("git", "annex", "lookupkey", name)); !strings.HasPrefix(key, "SHA256E-") {
		t.Fatalf("git-annex chose the key %q, not a SHA256E one as this test assumes", key)
	}
	start = time.Now()
	r.run("git", "annex", "copy", "--to", "swarm", name)
	took = time.Since(start)
	t.Logf("git annex copy --to swarm of 20 MiB took %v (bound %v)", took, putBound)
	if took > putBound {
		t.Errorf("git annex copy took %v, over the documented bound %v", took, putBound)
	}
	harness.WaitFor(t, 2*time.Minute, "the three healthy members holding the copied file", healthy(aroot.String()))
	if log := full.LogTail(400); strings.Contains(log, "resuming a partial copy failed") {
		t.Errorf("the full member retries a partial copy:\n%s", log)
	}
}
