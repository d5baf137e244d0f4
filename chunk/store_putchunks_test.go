package chunk_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

func TestPutChunksBatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), chunk.Options{})
	a, b, c := []byte("chunk a"), []byte("chunk b"), []byte("chunk c")
	if err := s.PutChunk(ctx, chunk.SumChunk(c), c); err != nil {
		t.Fatal(err)
	}
	before := s.Stats()
	bad := append([]byte(nil), b...)
	bad[0] ^= 1
	errs := s.PutChunks(ctx, []chunk.ChunkData{
		{CID: chunk.SumChunk(a), Data: a},
		{CID: chunk.SumChunk(b), Data: bad}, // lies about its CID
		{CID: chunk.SumChunk(c), Data: c},   // already held
		{CID: chunk.SumChunk(a), Data: a},   // twice in one batch
	})
	if errs[0] != nil || errs[2] != nil || errs[3] != nil {
		t.Fatalf("errs = %v", errs)
	}
	if !errors.Is(errs[1], chunk.ErrCorrupt) {
		t.Fatalf("corrupt item: %v, want ErrCorrupt", errs[1])
	}
	for _, want := range [][]byte{a, c} {
		got, err := s.GetChunk(ctx, chunk.SumChunk(want))
		if err != nil || string(got) != string(want) {
			t.Errorf("GetChunk = %q, %v", got, err)
		}
	}
	if ok, _ := s.HasChunk(chunk.SumChunk(b)); ok {
		t.Error("the corrupt chunk was stored")
	}
	after := s.Stats()
	if after.Chunks != before.Chunks+1 || after.Used != before.Used+int64(len(a)) {
		t.Errorf("stats %+v -> %+v: want exactly one new chunk of %d bytes", before, after, len(a))
	}
}

func TestPutChunksLimit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), chunk.Options{Limit: 10})
	a, b := []byte("123456"), []byte("abcdef")
	errs := s.PutChunks(ctx, []chunk.ChunkData{{CID: chunk.SumChunk(a), Data: a}, {CID: chunk.SumChunk(b), Data: b}})
	for i, err := range errs {
		if !errors.Is(err, chunk.ErrNoSpace) {
			t.Errorf("item %d: %v, want ErrNoSpace", i, err)
		}
	}
	if st := s.Stats(); st.Used != 0 || st.Chunks != 0 {
		t.Errorf("a refused batch changed the store: %+v", st)
	}
}

// TestPutContentAllOrNothing stores a content's chunks and manifest in one
// transaction: a bad chunk, or one not in the manifest, stores nothing; a
// chunk already held is not written again.
func TestPutContentAllOrNothing(t *testing.T) {
	ctx := t.Context()
	src := openStore(t, t.TempDir(), chunk.Options{Chunking: chunktest.Params})
	root, m, data := putTestContent(t, src, 7)
	items := func() []chunk.ChunkData {
		var out []chunk.ChunkData
		for _, c := range m.Chunks {
			out = append(out, chunk.ChunkData{CID: c.CID, Data: data[c.Offset : c.Offset+int64(c.Length)]})
		}
		return out
	}
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{})
	// One chunk is already held (another content shares it).
	first := items()[0]
	if err := s.PutChunk(ctx, first.CID, first.Data); err != nil {
		t.Fatal(err)
	}
	unchanged := func(what string) {
		t.Helper()
		if _, err := s.Manifest(ctx, root); !errors.Is(err, chunk.ErrNotFound) {
			t.Fatalf("after %s the manifest is recorded (%v)", what, err)
		}
		if st := s.Stats(); st.Chunks != 1 || len(chunkFiles(t, dir)) != 1 {
			t.Fatalf("after %s: %d chunks indexed, %d files", what, st.Chunks, len(chunkFiles(t, dir)))
		}
	}

	bad := items()
	bad[len(bad)-1].Data = append([]byte("x"), bad[len(bad)-1].Data[1:]...)
	if _, err := s.PutContent(ctx, m, bad); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("a corrupt chunk: %v, want ErrCorrupt", err)
	}
	unchanged("a corrupt chunk")
	foreign := append(items(), chunk.ChunkData{CID: chunk.SumChunk([]byte("other")), Data: []byte("other")})
	if _, err := s.PutContent(ctx, m, foreign); err == nil {
		t.Fatal("a chunk not in the manifest was accepted")
	}
	unchanged("a foreign chunk")
	if _, err := s.PutContent(ctx, m, items()[:len(m.Chunks)-1]); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("a missing chunk: %v, want ErrNotFound", err)
	}
	unchanged("a missing chunk")

	for range 2 { // the second time is a no-op
		got, err := s.PutContent(ctx, m, items())
		if err != nil || got != root {
			t.Fatalf("PutContent: %s, %v", got, err)
		}
	}
	var out bytes.Buffer
	if _, err := s.WriteTo(ctx, root, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("content read back: %v", err)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() {
		t.Fatalf("fsck after PutContent: %+v, %v", rep, err)
	}
}
