package exchange

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// serveFromFile writes data to a file on src, records its manifest (no
// chunk) and serves it from the file.
func serveFromFile(t *testing.T, src *node, data []byte) (cid.Cid, *FileContent, string) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := chunk.ManifestOf(ctx, f, src.st.Params(), "")
	if err != nil {
		t.Fatal(err)
	}
	root, err := src.st.PutManifest(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	fc, err := src.x.ServeFile(root, m, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fc.Close)
	return root, fc, path
}

// TestServeFileFetchInto: a content served from a file (no chunk in the
// server's store) is fetched straight into a file by another member, which
// stores nothing; after a change to the file the server refuses its chunks
// and the content fails.
func TestServeFileFetchInto(t *testing.T) {
	ctx := context.Background()
	n := newNodes(t, 3, nodeConfig{fetch: FetchOptions{StallTimeout: time.Second, FindTimeout: time.Second}})
	src, g, late := n[0], n[1], n[2]
	data := randomContent(t, 2<<20)
	root, fc, path := serveFromFile(t, src, data)
	if st := src.st.Stats(); st.Chunks != 0 {
		t.Fatalf("the server's store holds %d chunks", st.Chunks)
	}
	g.connect(t, src)

	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	start := time.Now()
	m, err := g.x.FetchInto(ctx, root, out, nil)
	t.Logf("FetchInto took %v", time.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != int64(len(data)) || !bytes.Equal(got, data) {
		t.Fatalf("fetched %d bytes (manifest %d), want the %d served", len(got), m.Size, len(data))
	}
	if st := g.st.Stats(); st.Chunks != 0 || st.Manifests != 0 {
		t.Fatalf("FetchInto stored %d chunks and %d manifests", st.Chunks, st.Manifests)
	}
	if fc.Err() != nil {
		t.Fatalf("content failed: %v", fc.Err())
	}

	// The same bytes, other content: the file changed under the server.
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte("changed"), 1<<20); err != nil {
		t.Fatal(err)
	}
	w.Close()
	late.connect(t, src)
	start = time.Now()
	err = late.x.Fetch(ctx, root, nil)
	t.Logf("failing fetch took %v: %v", time.Since(start), err)
	if err == nil {
		t.Fatal("fetched a content whose file changed")
	}
	select {
	case <-fc.Failed():
	default:
		t.Fatal("the content did not fail after its file changed")
	}
	if !errors.Is(fc.Err(), ErrFileChanged) {
		t.Fatalf("Err = %v, want ErrFileChanged", fc.Err())
	}
	if st := late.st.Stats(); st.Chunks != 0 {
		t.Errorf("%d chunks of a changed file stored", st.Chunks)
	}
}
