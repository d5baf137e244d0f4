// Package chunktest is the test suite every chunk store implementation runs:
//
//	func TestStore(t *testing.T) {
//		chunktest.Run(t, func(t *testing.T, dir string, opts chunk.Options) chunktest.Store {
//			s, err := chunk.Open(dir, opts)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
package chunktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Store is the part of a chunk store the suite exercises.
type Store interface {
	Put(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, *chunk.Manifest, error)
	PutManifest(ctx context.Context, m *chunk.Manifest) (cid.Cid, error)
	PutChunk(ctx context.Context, id cid.Cid, data []byte) error
	GetChunk(ctx context.Context, id cid.Cid) ([]byte, error)
	HasChunk(id cid.Cid) (bool, error)
	Manifest(ctx context.Context, root cid.Cid) (*chunk.Manifest, error)
	Manifests(ctx context.Context) ([]cid.Cid, error)
	Missing(ctx context.Context, root cid.Cid) ([]chunk.ChunkRef, error)
	WriteTo(ctx context.Context, root cid.Cid, w io.Writer) (int64, error)
	Remove(ctx context.Context, root cid.Cid) error
	Stats() chunk.Stats
	Close() error
}

// Params are the small chunking parameters the suite opens stores with, so
// that a few hundred KiB make many chunks.
var Params = chunk.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

// Open opens a store through open and closes it when the test ends; Close
// must tolerate being called again after the test closed it.
type Open func(t *testing.T, dir string, opts chunk.Options) Store

// Run runs the suite against the stores open returns.
func Run(t *testing.T, open Open) {
	tests := []struct {
		name string
		fn   func(*testing.T, Open)
	}{
		{"RoundTrip", testRoundTrip},
		{"PutTwice", testPutTwice},
		{"Dedup", testDedup},
		{"Refcount", testRefcount},
		{"NotFound", testNotFound},
		{"Limit", testLimit},
		{"SizeMismatch", testSizeMismatch},
		{"PutChunk", testPutChunk},
		{"Partial", testPartial},
		{"Reopen", testReopen},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func opened(t *testing.T, open Open, dir string, opts chunk.Options) Store {
	t.Helper()
	if opts.Chunking == (chunk.Params{}) {
		opts.Chunking = Params
	}
	s := open(t, dir, opts)
	t.Cleanup(func() { s.Close() })
	return s
}

// Content returns n deterministic pseudo-random bytes for seed.
func Content(seed uint64, n int) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16), byte(seed >> 24), 1}).Read(b)
	return b
}

func put(t *testing.T, s Store, data []byte) (cid.Cid, *chunk.Manifest) {
	t.Helper()
	root, m, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatalf("Put of %d bytes: %v", len(data), err)
	}
	return root, m
}

func read(t *testing.T, s Store, root cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.WriteTo(context.Background(), root, &buf)
	if err != nil {
		t.Fatalf("WriteTo %s: %v", root, err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo %s returned %d, wrote %d", root, n, buf.Len())
	}
	return buf.Bytes()
}

func testRoundTrip(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	sizes := []int{0, 1, Params.Min - 1, Params.Max, Params.Max + 1, 300_000, 1_000_003}
	for i, n := range sizes {
		data := Content(uint64(i), n)
		key := fmt.Sprintf("WORM-s%d--file%d", n, i)
		root, m, err := s.Put(ctx, bytes.NewReader(data), int64(n), key)
		if err != nil {
			t.Fatalf("Put %d bytes: %v", n, err)
		}
		if want, err := m.CID(); err != nil || want != root {
			t.Fatalf("Put returned root %s, manifest CID is %s (%v)", root, want, err)
		}
		if m.Size != int64(n) || m.Key != key {
			t.Fatalf("manifest says size %d key %q, want %d %q", m.Size, m.Key, n, key)
		}
		got, err := s.Manifest(ctx, root)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Chunks) != len(m.Chunks) || got.Size != m.Size {
			t.Fatalf("Manifest(%s) differs from the one Put returned", root)
		}
		if miss, err := s.Missing(ctx, root); err != nil || len(miss) != 0 {
			t.Fatalf("Missing after Put: %d chunks, %v", len(miss), err)
		}
		if !bytes.Equal(read(t, s, root), data) {
			t.Fatalf("content of %d bytes does not read back", n)
		}
		for _, c := range m.Chunks {
			b, err := s.GetChunk(ctx, c.CID)
			if err != nil || len(b) != int(c.Length) || !bytes.Equal(b, data[c.Offset:c.Offset+int64(c.Length)]) {
				t.Fatalf("GetChunk %s: %d bytes, %v", c.CID, len(b), err)
			}
		}
	}
	roots, err := s.Manifests(ctx)
	if err != nil || len(roots) != len(sizes) {
		t.Fatalf("Manifests: %d, %v; want %d", len(roots), err, len(sizes))
	}
	if st := s.Stats(); st.Manifests != int64(len(sizes)) || st.Used <= 0 || st.Chunks <= 0 {
		t.Fatalf("Stats after puts: %+v", st)
	}
}

func testPutTwice(t *testing.T, open Open) {
	s := opened(t, open, t.TempDir(), chunk.Options{})
	data := Content(10, 500_000)
	r1, _ := put(t, s, data)
	st := s.Stats()
	r2, _ := put(t, s, data)
	if r1 != r2 {
		t.Fatalf("same content gave roots %s and %s", r1, r2)
	}
	if st2 := s.Stats(); st2 != st {
		t.Fatalf("second Put of the same content changed stats from %+v to %+v", st, st2)
	}
}

func testDedup(t *testing.T, open Open) {
	s := opened(t, open, t.TempDir(), chunk.Options{})
	data := Content(11, 4<<20)
	put(t, s, data)
	before := s.Stats()
	edited := bytes.Clone(data)
	const edit = 64 << 10
	copy(edited[len(data)/2:], Content(12, edit))
	root, _ := put(t, s, edited)
	grown := s.Stats().Used - before.Used
	t.Logf("a %d-byte edit of %d bytes grew the store by %d bytes", edit, len(data), grown)
	if limit := int64(edit + 3*Params.Max); grown <= 0 || grown > limit {
		t.Fatalf("store grew by %d bytes, want 1..%d", grown, limit)
	}
	if !bytes.Equal(read(t, s, root), edited) {
		t.Fatal("edited content does not read back")
	}
}

func testRefcount(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	a := Content(20, 1<<20)
	b := append(bytes.Clone(a[:600_000]), Content(21, 400_000)...)
	ra, ma := put(t, s, a)
	rb, mb := put(t, s, b)
	shared := 0
	inB := map[cid.Cid]bool{}
	for _, c := range mb.Chunks {
		inB[c.CID] = true
	}
	for _, c := range ma.Chunks {
		if inB[c.CID] {
			shared++
		}
	}
	if shared == 0 {
		t.Fatal("test content shares no chunks")
	}
	if err := s.Remove(ctx, ra); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(read(t, s, rb), b) {
		t.Fatal("removing one manifest broke the other")
	}
	var want int64
	for _, c := range distinct(mb) {
		want += int64(c.Length)
	}
	if st := s.Stats(); st.Used != want || st.Chunks != int64(len(distinct(mb))) || st.Manifests != 1 {
		t.Fatalf("after removing one: %+v, want used %d in %d chunks", st, want, len(distinct(mb)))
	}
	for _, c := range ma.Chunks {
		has, err := s.HasChunk(c.CID)
		if err != nil || has != inB[c.CID] {
			t.Fatalf("HasChunk %s = %v, %v; want %v", c.CID, has, err, inB[c.CID])
		}
	}
	if err := s.Remove(ctx, rb); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Used != 0 || st.Chunks != 0 || st.Manifests != 0 {
		t.Fatalf("after removing all: %+v", st)
	}
}

func distinct(m *chunk.Manifest) []chunk.ChunkRef {
	seen := map[cid.Cid]bool{}
	var out []chunk.ChunkRef
	for _, c := range m.Chunks {
		if !seen[c.CID] {
			seen[c.CID] = true
			out = append(out, c)
		}
	}
	return out
}

func testNotFound(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	m := &chunk.Manifest{Version: chunk.ManifestVersion, Layout: chunk.Layout{Kind: chunk.LayoutReplicated}}
	root, err := m.CID()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(ctx, root); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("Remove of unknown: %v", err)
	}
	if _, err := s.Manifest(ctx, root); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("Manifest of unknown: %v", err)
	}
	if _, err := s.WriteTo(ctx, root, io.Discard); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("WriteTo of unknown: %v", err)
	}
	id := chunk.SumChunk([]byte("absent"))
	if _, err := s.GetChunk(ctx, id); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("GetChunk of unknown: %v", err)
	}
	if has, err := s.HasChunk(id); has || err != nil {
		t.Errorf("HasChunk of unknown: %v, %v", has, err)
	}
}

func testLimit(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{Limit: 1 << 20})
	put(t, s, Content(30, 600_000))
	before := s.Stats()
	if before.Limit != 1<<20 {
		t.Fatalf("Stats.Limit = %d", before.Limit)
	}
	big := Content(31, 600_000)
	if _, _, err := s.Put(ctx, bytes.NewReader(big), int64(len(big)), ""); !errors.Is(err, chunk.ErrNoSpace) {
		t.Fatalf("Put over the limit: %v, want ErrNoSpace", err)
	}
	c := Content(32, int(1<<20-before.Used+1))
	if err := s.PutChunk(ctx, chunk.SumChunk(c), c); !errors.Is(err, chunk.ErrNoSpace) {
		t.Fatalf("PutChunk over the limit: %v, want ErrNoSpace", err)
	}
	if after := s.Stats(); after != before {
		t.Fatalf("refused puts changed stats from %+v to %+v", before, after)
	}
	if roots, _ := s.Manifests(ctx); len(roots) != 1 {
		t.Fatalf("%d manifests after refused put", len(roots))
	}
	// What fits still goes in.
	small := Content(33, int(1<<20-before.Used))
	put(t, s, small)
}

type shortReader struct{ r io.Reader }

func (r shortReader) Read(p []byte) (int, error) { return r.r.Read(p) }

func testSizeMismatch(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	keep, _ := put(t, s, Content(40, 200_000))
	before := s.Stats()
	data := Content(41, 300_000)
	for _, size := range []int64{int64(len(data)) - 1, int64(len(data)) + 1, 0, 10} {
		if _, _, err := s.Put(ctx, shortReader{bytes.NewReader(data)}, size, ""); err == nil {
			t.Fatalf("Put of %d bytes declared as %d succeeded", len(data), size)
		}
		if after := s.Stats(); after != before {
			t.Fatalf("failed Put (size %d) changed stats from %+v to %+v", size, before, after)
		}
	}
	if roots, _ := s.Manifests(ctx); len(roots) != 1 || roots[0] != keep {
		t.Fatalf("manifests after failed puts: %v", roots)
	}
}

func testPutChunk(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	data := Content(50, 10_000)
	id := chunk.SumChunk(data)
	bad := bytes.Clone(data)
	bad[5] ^= 1
	if err := s.PutChunk(ctx, id, bad); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("PutChunk of wrong bytes: %v, want ErrCorrupt", err)
	}
	if has, _ := s.HasChunk(id); has {
		t.Fatal("chunk held after refused PutChunk")
	}
	m := &chunk.Manifest{Version: chunk.ManifestVersion, Layout: chunk.Layout{Kind: chunk.LayoutReplicated}}
	mid, _ := m.CID()
	if err := s.PutChunk(ctx, mid, data); !errors.Is(err, chunk.ErrBadCID) {
		t.Fatalf("PutChunk under a manifest CID: %v, want ErrBadCID", err)
	}
	for range 2 {
		if err := s.PutChunk(ctx, id, data); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Chunks != 1 || st.Used != int64(len(data)) {
		t.Fatalf("stats after PutChunk twice: %+v", st)
	}
	got, err := s.GetChunk(ctx, id)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetChunk: %v", err)
	}
}

func testPartial(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	data := Content(60, 700_000)
	m, err := chunk.BuildManifest(ctx, bytes.NewReader(data), "", Params, func(chunk.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	root, err := s.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.PutManifest(ctx, m); err != nil || again != root {
		t.Fatalf("PutManifest twice: %s, %v", again, err)
	}
	miss, err := s.Missing(ctx, root)
	if err != nil || len(miss) != len(m.Chunks) {
		t.Fatalf("Missing of bare manifest: %d of %d, %v", len(miss), len(m.Chunks), err)
	}
	if _, err := s.WriteTo(ctx, root, io.Discard); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("WriteTo of incomplete content: %v, want ErrNotFound", err)
	}
	for i := len(m.Chunks) - 1; i >= 0; i-- {
		c := m.Chunks[i]
		if err := s.PutChunk(ctx, c.CID, data[c.Offset:c.Offset+int64(c.Length)]); err != nil {
			t.Fatal(err)
		}
		miss, err := s.Missing(ctx, root)
		if err != nil || len(miss) != i {
			t.Fatalf("Missing after %d chunks: %d, %v", len(m.Chunks)-i, len(miss), err)
		}
	}
	if !bytes.Equal(read(t, s, root), data) {
		t.Fatal("content assembled from chunks does not read back")
	}
	if err := s.Remove(ctx, root); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Used != 0 || st.Chunks != 0 {
		t.Fatalf("after Remove: %+v", st)
	}
}

func testReopen(t *testing.T, open Open) {
	dir := t.TempDir()
	s := opened(t, open, dir, chunk.Options{})
	data := Content(70, 400_000)
	root, _ := put(t, s, data)
	st := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = opened(t, open, dir, chunk.Options{})
	if got := s.Stats(); got != st {
		t.Fatalf("stats after reopen %+v, before %+v", got, st)
	}
	if !bytes.Equal(read(t, s, root), data) {
		t.Fatal("content does not read back after reopen")
	}
}

// testConcurrent runs puts, reads and removes of overlapping content at once
// (run it with -race), then checks every survivor and that removing all
// frees everything.
func testConcurrent(t *testing.T, open Open) {
	ctx := context.Background()
	s := opened(t, open, t.TempDir(), chunk.Options{})
	base := Content(80, 600_000)
	const workers, rounds = 6, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				// Each worker puts a variant sharing most chunks with base.
				data := bytes.Clone(base)
				copy(data[(w*rounds+r)*9000:], Content(uint64(1000+w), 5000))
				root, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
				if err != nil {
					errs <- err
					return
				}
				var buf bytes.Buffer
				if _, err := s.WriteTo(ctx, root, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
					errs <- fmt.Errorf("worker %d round %d reads back wrong content: %v", w, r, err)
					return
				}
				if r%2 == 0 {
					if err := s.Remove(ctx, root); err != nil && !errors.Is(err, chunk.ErrNotFound) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	roots, err := s.Manifests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, root := range roots {
		if miss, err := s.Missing(ctx, root); err != nil || len(miss) != 0 {
			t.Fatalf("survivor %s misses %d chunks: %v", root, len(miss), err)
		}
		read(t, s, root)
		if err := s.Remove(ctx, root); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Used != 0 || st.Chunks != 0 || st.Manifests != 0 {
		t.Fatalf("after removing all: %+v", st)
	}
}
