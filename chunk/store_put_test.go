package chunk_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestPutReadErrorLeavesNothing fails a Put after many chunks have gone
// through the pipeline: nothing may be indexed and no file may remain.
func TestPutReadErrorLeavesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	const size = 4 << 20 // about 200 chunks of chunktest.Params
	r := io.MultiReader(bytes.NewReader(chunktest.Content(4, size/2)), &errReader{n: 0})
	if _, _, err := s.Put(ctx, r, size, ""); err == nil {
		t.Fatal("Put succeeded with a failing reader")
	}
	if st := s.Stats(); st.Chunks != 0 || st.Used != 0 || st.Manifests != 0 {
		t.Fatalf("failed Put left %+v in the index", st)
	}
	if files := chunkFiles(t, dir); len(files) != 0 {
		t.Fatalf("failed Put left %d files, first %s", len(files), files[0])
	}
}

// TestPutCancelled cancels the context of a Put in flight.
func TestPutCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	const size = 4 << 20
	data := chunktest.Content(5, size)
	// Cancel once half the content has been read.
	r := io.MultiReader(bytes.NewReader(data[:size/2]), cancelReader(cancel), bytes.NewReader(data[size/2:]))
	if _, _, err := s.Put(ctx, r, size, ""); err == nil {
		t.Fatal("Put succeeded after its context was cancelled")
	}
	if st := s.Stats(); st.Chunks != 0 || st.Manifests != 0 {
		t.Fatalf("cancelled Put left %+v in the index", st)
	}
	if files := chunkFiles(t, dir); len(files) != 0 {
		t.Fatalf("cancelled Put left %d files, first %s", len(files), files[0])
	}
}

// cancelReader calls cancel on its first read and returns nothing.
type cancelReader context.CancelFunc

func (c cancelReader) Read([]byte) (int, error) {
	c()
	return 0, io.EOF
}

// TestPutRewritesOrphan plants a damaged file under the name of a chunk the
// index does not list (what a crash can leave): Put must write the chunk
// anew rather than trust the file.
func TestPutRewritesOrphan(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	data := chunktest.Content(6, 300<<10)
	first := chunkAll(t, data, chunktest.Params)[0]
	sum := sha256.Sum256(first)
	path := filepath.Join(dir, "chunks", hex.EncodeToString(sum[:1]), chunk.SumChunk(first).String())
	if err := os.WriteFile(path, first[:len(first)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	root, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() {
		t.Fatalf("fsck after Put over an orphan: %+v %v", rep, err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(ctx, root, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("content does not read back: %v", err)
	}
}
