package chunk_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestReadChunkIntoDoesNotHash: ReadChunkInto hands out a flipped chunk as
// it is (the receiver verifies), GetChunk then finds and quarantines it,
// and a chunk file of the wrong size is caught by ReadChunkInto itself.
func TestReadChunkIntoDoesNotHash(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	_, m, _ := putTestContent(t, s, 5)
	flipped, short := m.Chunks[1], m.Chunks[3]

	good, err := s.ReadChunkInto(ctx, m.Chunks[0].CID, nil)
	if err != nil || chunk.VerifyChunk(m.Chunks[0].CID, good) != nil {
		t.Fatalf("ReadChunkInto of a good chunk: %v", err)
	}

	flipByte(t, chunkFileOf(t, dir, flipped.CID), 10)
	got, err := s.ReadChunkInto(ctx, flipped.CID, make([]byte, 0, 1<<20))
	if err != nil {
		t.Fatalf("ReadChunkInto of a flipped chunk: %v", err)
	}
	if int64(len(got)) != int64(flipped.Length) || chunk.VerifyChunk(flipped.CID, got) == nil {
		t.Fatal("ReadChunkInto did not return the flipped bytes as they are")
	}
	if s.Stats().Corrupt != 0 {
		t.Fatal("ReadChunkInto quarantined a chunk it did not hash")
	}
	if _, err := s.GetChunk(ctx, flipped.CID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("GetChunk of the flipped chunk: %v, want ErrCorrupt", err)
	}

	path := chunkFileOf(t, dir, short.CID)
	if err := os.Truncate(path, int64(short.Length)-1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadChunkInto(ctx, short.CID, nil); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("ReadChunkInto of a short chunk file: %v, want ErrCorrupt", err)
	}
	if st := s.Stats(); st.Corrupt != 2 {
		t.Fatalf("corrupt count %d, want 2", st.Corrupt)
	}
}
