package chunk_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
	bolt "go.etcd.io/bbolt"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// filledStore is a closed store holding whole contents (some sharing
// chunks, one pinned twice over), a partial one and a removed one.
type filledStore struct {
	dir      string
	whole    map[cid.Cid][]byte
	pinned   map[cid.Cid]bool
	partial  cid.Cid // manifest recorded, one chunk of two held
	removed  cid.Cid
	used     int64
	chunks   int64
	manifest int64
}

func fillStore(t *testing.T, n int) filledStore {
	t.Helper()
	ctx := context.Background()
	f := filledStore{dir: t.TempDir(), whole: map[cid.Cid][]byte{}, pinned: map[cid.Cid]bool{}}
	s, err := chunk.Open(f.dir, chunk.Options{Chunking: chunktest.Params})
	if err != nil {
		t.Fatal(err)
	}
	shared := chunktest.Content(1000, 200_000)
	for i := range n {
		data := chunktest.Content(uint64(i), 1000+i*37_000%300_000)
		if i%2 == 0 {
			data = append(append([]byte(nil), shared...), data...)
		}
		if i == 3 {
			data = nil // the empty content
		}
		root, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		f.whole[root] = data
		f.pinned[root] = true
	}
	// A content received from a peer: manifest first, then its chunks.
	recv := chunktest.Content(2000, 150_000)
	m, err := chunk.BuildManifest(ctx, bytes.NewReader(recv), "", chunktest.Params, func(chunk.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Chunks {
		if err := s.PutChunk(ctx, c.CID, recv[c.Offset:c.Offset+int64(c.Length)]); err != nil {
			t.Fatal(err)
		}
	}
	f.whole[root] = recv
	// A partial content: its first chunk only.
	part := chunktest.Content(3000, 150_000)
	m, err = chunk.BuildManifest(ctx, bytes.NewReader(part), "", chunktest.Params, func(chunk.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f.partial, err = s.PutManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := s.PutChunk(ctx, m.Chunks[0].CID, part[:m.Chunks[0].Length]); err != nil {
		t.Fatal(err)
	}
	// A removed content must not come back.
	gone := chunktest.Content(4000, 90_000)
	if f.removed, _, err = s.Put(ctx, bytes.NewReader(gone), int64(len(gone)), ""); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, f.removed); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	f.used, f.chunks, f.manifest = st.Used, st.Chunks, st.Manifests
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return f
}

// copy returns a copy of the store in a new folder.
func (f filledStore) copy(t *testing.T) filledStore {
	t.Helper()
	g := f
	g.dir = t.TempDir()
	if err := os.CopyFS(g.dir, os.DirFS(f.dir)); err != nil {
		t.Fatal(err)
	}
	return g
}

// highWater returns the bytes of the index file that bbolt uses.
func highWater(t *testing.T, path string) int64 {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int64
	db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
	return n
}

// check opens the store and compares every content byte for byte.
func (f filledStore) check(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	s, err := chunk.Open(f.dir, chunk.Options{Chunking: chunktest.Params})
	if err != nil {
		t.Fatalf("open after rebuild: %v", err)
	}
	defer s.Close()
	for root, data := range f.whole {
		var buf bytes.Buffer
		if _, err := s.WriteTo(ctx, root, &buf); err != nil {
			t.Fatalf("reading %s after rebuild: %v", root, err)
		}
		if !bytes.Equal(buf.Bytes(), data) {
			t.Fatalf("content %s differs after rebuild", root)
		}
	}
	miss, err := s.Missing(ctx, f.partial)
	if err != nil || len(miss) == 0 {
		t.Fatalf("partial content: missing %d, %v", len(miss), err)
	}
	if _, err := s.Manifest(ctx, f.removed); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("removed content is back: %v", err)
	}
	if st := s.Stats(); st.Used != f.used || st.Chunks != f.chunks || st.Manifests != f.manifest {
		t.Fatalf("stats after rebuild %+v, before used %d chunks %d manifests %d", st, f.used, f.chunks, f.manifest)
	}
	rep, err := s.Fsck(ctx, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("fsck after rebuild: %+v %v", rep, err)
	}
}

func (f filledStore) rebuild(t *testing.T) chunk.RebuildReport {
	t.Helper()
	rep, err := chunk.RebuildIndex(context.Background(), f.dir, chunk.Options{})
	if err != nil {
		t.Fatalf("rebuild: %v", err)
	}
	if rep.Whole != len(f.whole) || len(rep.Incomplete) != 1 || rep.Incomplete[0] != f.partial || len(rep.Corrupt) != 0 {
		t.Fatalf("rebuild report: %d whole (want %d), incomplete %v (want %s), corrupt %v",
			rep.Whole, len(f.whole), rep.Incomplete, f.partial, rep.Corrupt)
	}
	if rep.Pinned != len(f.pinned) {
		t.Fatalf("rebuild found %d pinned, want %d", rep.Pinned, len(f.pinned))
	}
	return rep
}

func TestIndexDamage(t *testing.T) {
	orig := fillStore(t, 40)
	size := highWater(t, filepath.Join(orig.dir, "index.db"))
	page := int64(os.Getpagesize())
	if size < 8*page {
		t.Fatalf("index of %d bytes in use is too small for the cases", size)
	}
	cases := []struct {
		name   string
		damage func(path string) error
	}{
		{"truncated to 0", func(p string) error { return os.Truncate(p, 0) }},
		{"truncated below one page", func(p string) error { return os.Truncate(p, 100) }},
		{"truncated after the meta pages", func(p string) error { return os.Truncate(p, 2*page+10) }},
		{"truncated in the middle", func(p string) error { return os.Truncate(p, size/2) }},
		{"truncated one page short of the high-water mark", func(p string) error { return os.Truncate(p, size-page) }},
		{"deleted", os.Remove},
		{"meta pages zeroed", func(p string) error { return writeAt(p, 0, make([]byte, 2*page)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := orig.copy(t)
			path := filepath.Join(f.dir, "index.db")
			if err := tc.damage(path); err != nil {
				t.Fatal(err)
			}
			s, err := chunk.Open(f.dir, chunk.Options{})
			if err == nil {
				s.Close()
				t.Fatal("damaged index opened")
			}
			if !errors.Is(err, chunk.ErrIndexDamaged) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line wrapping ErrIndexDamaged: %q", err)
			}
			t.Logf("open: %v", err)
			rep := f.rebuild(t)
			if tc.name != "deleted" && rep.KeptAs == "" {
				t.Fatal("the damaged index was not kept")
			}
			f.check(t)
		})
	}
}

func writeAt(path string, off int64, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteAt(b, off)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestIndexFlippedBytes flips random bytes in the pages after the meta
// pages: bbolt has no checksum there, so Open may not notice; then Fsck
// must, or the index still reads right. Never a panic.
func TestIndexFlippedBytes(t *testing.T) {
	ctx := context.Background()
	page := int64(os.Getpagesize())
	orig := fillStore(t, 30)
	for seed := range uint64(4) {
		f := orig.copy(t)
		path := filepath.Join(f.dir, "index.db")
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(seed, 7))
		for range 64 {
			i := 2*page + rng.Int64N(int64(len(b))-2*page)
			b[i] ^= byte(1 + rng.IntN(255))
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := chunk.Open(f.dir, chunk.Options{})
		if err == nil {
			_, ferr := s.Fsck(ctx, false)
			s.Close()
			t.Logf("seed %d: opened; fsck: %v", seed, ferr)
			if ferr != nil && !errors.Is(ferr, chunk.ErrIndexDamaged) {
				t.Fatalf("seed %d: fsck error does not wrap ErrIndexDamaged: %v", seed, ferr)
			}
		} else {
			t.Logf("seed %d: open: %v", seed, err)
			if !errors.Is(err, chunk.ErrIndexDamaged) {
				t.Fatalf("seed %d: error does not wrap ErrIndexDamaged: %v", seed, err)
			}
		}
		f.rebuild(t)
		f.check(t)
	}
}

// TestRebuildHealthy rebuilds an index that is fine: nothing changes.
func TestRebuildHealthy(t *testing.T) {
	f := fillStore(t, 10)
	f.rebuild(t)
	f.check(t)
	f.rebuild(t)
	f.check(t)
}

// TestRebuildQuarantinesCorrupt damages a chunk and a manifest object
// before a rebuild: both are quarantined and reported, the contents they
// belong to are incomplete, the rest is whole.
func TestRebuildQuarantinesCorrupt(t *testing.T) {
	ctx := context.Background()
	f := fillStore(t, 6)
	var victim, other cid.Cid
	for root, data := range f.whole {
		if len(data) > 0 && !victim.Defined() {
			victim = root
		} else if len(data) > 0 && !other.Defined() {
			other = root
		}
	}
	s := openStore(t, f.dir, chunk.Options{})
	m, err := s.Manifest(ctx, victim)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	last := m.Chunks[len(m.Chunks)-1].CID
	chunkFile := findObject(t, f.dir, "chunks", last)
	if err := writeAt(chunkFile, 0, []byte("rot")); err != nil {
		t.Fatal(err)
	}
	if err := writeAt(findObject(t, f.dir, "manifests", other), 1, []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(f.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	rep, err := chunk.RebuildIndex(ctx, f.dir, chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 2 {
		t.Fatalf("corrupt %v, want the chunk and the manifest", rep.Corrupt)
	}
	if _, err := os.Stat(chunkFile); !os.IsNotExist(err) {
		t.Fatalf("corrupt chunk still in place: %v", err)
	}
	s = openStore(t, f.dir, chunk.Options{})
	if miss, err := s.Missing(ctx, victim); err != nil || len(miss) == 0 {
		t.Fatalf("content with a corrupt chunk: missing %v, %v", miss, err)
	}
	if _, err := s.Manifest(ctx, other); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("content with a corrupt manifest: %v", err)
	}
	if st := s.Stats(); st.Corrupt != 2 {
		t.Fatalf("corrupt counter %d, want 2", st.Corrupt)
	}
}

func findObject(t *testing.T, dir, top string, id cid.Cid) string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, top, "*", id.String()))
	if err != nil || len(m) != 1 {
		t.Fatalf("object %s under %s: %v %v", id, top, m, err)
	}
	return m[0]
}

// TestFreshStoreNotDamage: a store without objects and without an index is
// new, with an empty index too (a kill just after creating it).
func TestFreshStoreNotDamage(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{})
	s.Close()
	if err := os.Truncate(filepath.Join(dir, "index.db"), 0); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, chunk.Options{})
	s.Close()
}

const rebuildDirEnv = "CHUNK_REBUILD_DIR"

// TestHelperRebuild is the child of TestRebuildKilled: it rebuilds the
// index of the store in its folder over and over until it is killed.
func TestHelperRebuild(t *testing.T) {
	dir := os.Getenv(rebuildDirEnv)
	if dir == "" {
		t.Skip("run by TestRebuildKilled")
	}
	fmt.Println("ready")
	for {
		if _, err := chunk.RebuildIndex(context.Background(), dir, chunk.Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRebuildKilled kills a rebuild with SIGKILL at random moments: the
// store then opens or says its index is damaged, and rebuilds again to
// every content whole.
func TestRebuildKilled(t *testing.T) {
	if os.Getenv(rebuildDirEnv) != "" {
		t.Skip("in the helper")
	}
	f := fillStore(t, 40)
	if err := os.Remove(filepath.Join(f.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	f.rebuild(t)
	took := time.Since(start)
	if err := os.Remove(filepath.Join(f.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	opened := 0
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperRebuild$", "-test.count=1")
		cmd.Env = append(os.Environ(), rebuildDirEnv+"="+f.dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: helper did not start: %q %v", round, line, err)
		}
		// The random moment of the kill is the point of the test.
		// Within about the first rebuild, which starts from no index.
		<-time.After(time.Duration(rng.Int64N(int64(took) * 3 / 2)))
		cmd.Process.Kill()
		if err := cmd.Wait(); err == nil {
			t.Fatalf("round %d: helper ended before it was killed", round)
		}
		s, err := chunk.Open(f.dir, chunk.Options{})
		switch {
		case err == nil:
			opened++
			s.Close()
		case !errors.Is(err, chunk.ErrIndexDamaged):
			t.Fatalf("round %d: after a killed rebuild: %v", round, err)
		default:
			f.rebuild(t)
		}
		f.check(t)
		if round%2 == 0 { // start the next round from a missing index again
			os.Remove(filepath.Join(f.dir, "index.db"))
		}
	}
	t.Logf("a rebuild takes %v; %d of 5 killed rebuilds left an index that opened", took, opened)
}

// TestFsckObjects: fsck reports a manifest object nothing records (a Put
// killed before its index transaction) and a recorded manifest whose object
// is gone; repair removes the first and writes the second.
func TestFsckObjects(t *testing.T) {
	ctx := context.Background()
	f := fillStore(t, 4)
	var victim cid.Cid
	for root := range f.whole {
		victim = root
		break
	}
	obj := findObject(t, f.dir, "manifests", victim)
	enc, err := os.ReadFile(obj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(obj); err != nil {
		t.Fatal(err)
	}
	// A manifest object of a Put killed before its index transaction.
	dh, err := multihash.Decode(f.removed.Hash())
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(f.dir, "manifests", fmt.Sprintf("%02x", dh.Digest[0]), f.removed.String())
	if err := os.WriteFile(stray, []byte("whatever"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, f.dir, chunk.Options{})
	rep, err := s.Fsck(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unbacked) != 1 || rep.Unbacked[0] != victim {
		t.Fatalf("fsck unbacked %v, want %s", rep.Unbacked, victim)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0] != stray {
		t.Fatalf("fsck orphans %v, want %s", rep.Orphans, stray)
	}
	if _, err := s.Fsck(ctx, true); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(obj); err != nil || !bytes.Equal(got, enc) {
		t.Fatalf("repair did not write the manifest object back: %v", err)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() {
		t.Fatalf("fsck after repair: %+v %v", rep, err)
	}
	if _, err := os.Stat(stray); !os.IsNotExist(err) {
		t.Fatalf("repair left the orphaned manifest object: %v", err)
	}
}

// TestMigrateFormat1 opens a store as format 1 left it (manifests only in
// the index): Open writes the manifest objects and pin markers, so that a
// rebuild afterwards finds every content.
func TestMigrateFormat1(t *testing.T) {
	f := fillStore(t, 6)
	for _, top := range []string{"manifests", "pins"} {
		if err := os.RemoveAll(filepath.Join(f.dir, top)); err != nil {
			t.Fatal(err)
		}
	}
	db, err := bolt.Open(filepath.Join(f.dir, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("format"), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s := openStore(t, f.dir, chunk.Options{})
	s.Close()
	for root := range f.whole {
		findObject(t, f.dir, "manifests", root)
	}
	for root := range f.pinned {
		findObject(t, f.dir, "pins", root)
	}
	if err := os.Remove(filepath.Join(f.dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	f.rebuild(t)
	f.check(t)
}
