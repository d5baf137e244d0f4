package chunk_test

import (
	"context"
	"errors"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
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
