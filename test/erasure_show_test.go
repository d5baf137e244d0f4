package test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// The shows of issue 12 that need big files (docs/ERASURE.md "Shown").
// ANNEX_SWARM_ERASURE_BIG=1 runs them at the sizes (a 300 MiB file
// on members of 100 MiB, a 1 MiB edit in 256 MiB); the default run keeps
// the same proportions at a size a loaded CI machine does in seconds.
func erasureBig() bool { return os.Getenv("ANNEX_SWARM_ERASURE_BIG") == "1" }

// codedSwarm is a swarm of storage members and client members with
// erasure = 4+2, copies_min 2 (success threshold 5).
type codedSwarm struct {
	c       *harness.Cluster
	s       *harness.Swarm
	storage []*harness.Node
	clients []*harness.Node
}

// formCodedSwarm starts n storage members (each with config storageCfg)
// and the named client members, forms the swarm with erasure = 4+2 and
// waits until every member has the final rules and all are connected.
func formCodedSwarm(tb testing.TB, n int, storageCfg string, clients ...string) *codedSwarm {
	tb.Helper()
	cs := &codedSwarm{}
	var nodes []*harness.Node
	for i := range n {
		nd := harness.NewNode(tb, bin, fmt.Sprintf("s%d", i), harness.Options{Args: replArgs, Config: storageCfg})
		cs.storage = append(cs.storage, nd)
		nodes = append(nodes, nd)
	}
	roles := map[int]string{}
	for _, name := range clients {
		roles[len(nodes)] = "client"
		nd := harness.NewNode(tb, bin, name, harness.Options{Args: replArgs})
		cs.clients = append(cs.clients, nd)
		nodes = append(nodes, nd)
	}
	cs.c = harness.Of(bin, nodes...)
	s := cs.c.FormSwarm(tb, harness.SwarmOptions{Copies: 2, CopiesMin: 2, Roles: roles})
	cs.s = s
	cs.c.MustRun(tb, "rules", "set", s.Rules, "--key", s.Key, "erasure=4+2", "erasure_min_size=1MiB", "repair_after=1h")
	nodes[0].MustCLI("rules", "push", s.Rules)
	want := swarmVersion(nodes[0])
	harness.WaitFor(tb, 2*time.Minute, "erasure rules on every member, all connected", func() bool {
		for _, a := range nodes {
			if swarmVersion(a) != want {
				return false
			}
			for _, b := range nodes {
				if a != b && !connectedTo(a, b.PeerID) {
					return false
				}
			}
		}
		return true
	})
	return cs
}

// used is the sum of the store sizes of nodes.
func used(nodes []*harness.Node) int64 {
	var u int64
	for _, n := range nodes {
		u += n.StatusJSON().Store.Used
	}
	return u
}

// codedPut puts path on n and waits until all 6 shard sets are placed.
func codedPut(tb testing.TB, n *harness.Node, path string) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := n.Client().Put(ctx, client.PutRequest{Path: path}, nil)
	if err != nil {
		tb.Fatalf("put %s: %v\n%s", filepath.Base(path), err, n.LogTail(40))
	}
	var w client.WhereResult
	var werr error
	harness.WaitFor(tb, 5*time.Minute, "six shard sets placed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		w, werr = n.Client().Where(ctx, res.CID)
		return werr == nil && w.Placed == 6
	})
	if w.Layout != "erasure" || len(w.Holders) != 6 {
		tb.Fatalf("where %s = %+v, want an erasure content on 6 members", res.CID, w)
	}
	return res.CID
}

// TestErasureFileLargerThanAnyMember: six storage members whose
// [limits] storage is a third of the file each hold one shard set of it
// (4+2: a quarter of the file each), and a client that never held it gets
// it back byte for byte. Issue 12: 300 MiB on members of 100 MiB
// (ANNEX_SWARM_ERASURE_BIG=1); by default 24 MiB on members of 8 MiB.
func TestErasureFileLargerThanAnyMember(t *testing.T) {
	size, limit := int64(24)<<20, "8MiB"
	if erasureBig() {
		size, limit = 300<<20, "100MiB"
	}
	cs := formCodedSwarm(t, 6, "[limits]\nstorage = \""+limit+"\"\n", "laptop", "desktop")
	laptop, desktop := cs.clients[0], cs.clients[1]
	for _, n := range cs.storage {
		if l := n.StatusJSON().Store.Limit; l <= 0 || l >= size {
			t.Fatalf("%s has a storage limit of %d bytes, want one below the %d-byte file", n.Name, l, size)
		}
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "big")
	sum := writeRandomFile(t, src, size, 31)
	start := time.Now()
	root := codedPut(t, laptop, src)
	put := time.Since(start)
	for _, n := range cs.storage {
		st := n.StatusJSON().Store
		t.Logf("%s holds %d bytes of its limit %d (%.1f %% of the file)", n.Name, st.Used, st.Limit, 100*float64(st.Used)/float64(size))
		if st.Used > st.Limit || st.Used < size/4 {
			t.Errorf("%s holds %d bytes, want a shard set (≥ %d) within its limit %d", n.Name, st.Used, size/4, st.Limit)
		}
	}
	out := filepath.Join(dir, "out")
	start = time.Now()
	desktop.MustCLI("get", root, "-o", out)
	get := time.Since(start)
	if fileSHA256(t, out) != sum {
		t.Fatal("the file got back differs")
	}
	t.Logf("%d MiB on 6 members of %s each: put (6 sets) %v, get %v", size>>20, limit,
		put.Round(10*time.Millisecond), get.Round(10*time.Millisecond))
}

// TestErasureEditStoresFewShards: a 1 MiB edit in the middle of a coded
// file, put again, grows the storage members' stores by at most
// 1.55 × 4 MiB in total, and the uploader sends no more: set i of the new
// version goes to the member holding set i of the old one (placement by
// the first chunk), which fetches and stores only the shards of the
// chunks the edit touched. Issue 12: a
// 256 MiB file (ANNEX_SWARM_ERASURE_BIG=1); by default 32 MiB.
func TestErasureEditStoresFewShards(t *testing.T) {
	size := int64(32) << 20
	if erasureBig() {
		size = 256 << 20
	}
	cs := formCodedSwarm(t, 6, "", "laptop")
	laptop := cs.clients[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "v1")
	writeRandomFile(t, src, size, 41)
	first := codedPut(t, laptop, src)
	stored0, client0 := used(cs.storage), used(cs.clients)
	sent0 := laptop.StatusJSON().BytesSent

	f, err := os.OpenFile(src, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Random bytes, as a real edit: a periodic pattern gives the chunker
	// no boundary inside it and makes the chunks around it maximal.
	edit := make([]byte, 1<<20)
	if _, err := io.ReadFull(rand.NewChaCha8([32]byte{42}), edit); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(edit, size/2); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	second := codedPut(t, laptop, src)
	if second == first {
		t.Fatal("the edited file has the root of the original")
	}
	grown, clientGrown := used(cs.storage)-stored0, used(cs.clients)-client0
	sent := laptop.StatusJSON().BytesSent - sent0
	const bound = 155 * 4 << 20 / 100
	t.Logf("1 MiB edit in %d MiB: storage members grew by %d bytes (%.2f MiB, bound 1.55 × 4 MiB = %.2f MiB); the uploading client's store by %d bytes; it sent %d bytes",
		size>>20, grown, float64(grown)/(1<<20), float64(bound)/(1<<20), clientGrown, sent)
	if grown > bound {
		t.Errorf("storage members grew by %d bytes, more than 1.55 × 4 MiB", grown)
	}
	if sent > bound {
		t.Errorf("the uploader sent %d bytes for the new version, more than 1.55 × 4 MiB: the holders fetched shards they held", sent)
	}
	if grown <= 0 {
		t.Errorf("storage members did not grow (%d bytes): the new shards are stored nowhere", grown)
	}
}

// A client member that never held a coded content gets it by decoding
// each chunk straight into the output file: the file is byte for byte the
// one put, and the client's store keeps nothing of it (docs/ERASURE.md
// "Get"; a client's replicated get does the same).
func TestErasureClientGetKeepsNothing(t *testing.T) {
	cs := formCodedSwarm(t, 6, "", "laptop", "desktop")
	laptop, desktop := cs.clients[0], cs.clients[1]
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandomFile(t, src, 6<<20, 41)
	root := harness.LastLine(laptop.MustCLI("put", src))
	before := desktop.StatusJSON().Store
	out := filepath.Join(dir, "out")
	desktop.MustCLI("get", root, "-o", out)
	if fileSHA256(t, out) != sum {
		t.Fatal("the coded content the client got differs")
	}
	if after := desktop.StatusJSON().Store; after.Used != before.Used || after.Chunks != before.Chunks {
		t.Errorf("the client's store went from %d bytes (%d chunks) to %d bytes (%d chunks) on a coded get, want no change",
			before.Used, before.Chunks, after.Used, after.Chunks)
	}
}
