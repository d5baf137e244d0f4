package chunk_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestManifestOfMatchesPut: the manifest built without storing is the
// one Put records, and building it writes nothing.
func TestManifestOfMatchesPut(t *testing.T) {
	ctx := context.Background()
	for _, size := range []int{0, 1, 300 << 10, 4 << 20} {
		data := chunktest.Content(11, size)
		s := openStore(t, t.TempDir(), chunk.Options{Chunking: chunktest.Params})
		m, err := chunk.ManifestOf(ctx, bytes.NewReader(data), s.Params(), "SHA256E-s1--ab")
		if err != nil {
			t.Fatal(err)
		}
		if st := s.Stats(); st.Chunks != 0 || st.Used != 0 {
			t.Fatalf("ManifestOf stored something: %+v", st)
		}
		root, want, err := s.Put(ctx, bytes.NewReader(data), int64(size), "SHA256E-s1--ab")
		if err != nil {
			t.Fatal(err)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got := chunk.ManifestCID(enc); !got.Equals(root) {
			t.Fatalf("size %d: built manifest %s (%d chunks), Put recorded %s (%d chunks)", size, got, len(m.Chunks), root, len(want.Chunks))
		}
	}
}
