package chunk_test

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestPutCodedStoresChunksNotShards: PutCoded records the same v2 manifest
// BuildCodedManifest builds, holds every chunk (the content reads back) and
// no shard beyond the data shards that are the chunk's bytes themselves.
func TestPutCodedStoresChunksNotShards(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), chunk.Options{Chunking: chunktest.Params})
	data := make([]byte, 700<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	root, m, err := s.PutCoded(ctx, bytes.NewReader(data), int64(len(data)), "", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := newCodedContent(t, data, 4, 2)
	if !root.Equals(want.root) || !m.Coded() {
		t.Fatalf("root %s coded=%t, want %s, coded", root, m.Coded(), want.root)
	}
	if missing, err := s.Missing(ctx, root); err != nil || len(missing) != 0 {
		t.Fatalf("missing %d chunks (%v)", len(missing), err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(ctx, root, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("content read back differs (%v)", err)
	}
	if st := s.Stats(); st.Used != int64(len(data)) {
		t.Errorf("store uses %d bytes for %d bytes of chunks", st.Used, len(data))
	}
	if _, _, err := s.PutCoded(ctx, bytes.NewReader(data[:10]), 20, "", 4, 2); err == nil {
		t.Error("a short read was stored")
	}
}
