package chunk_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestOpenAfterUncleanStopRemovesOrphans leaves a Remove's files behind
// its index entry, as a kill -9 between the two does. After a clean Close
// Open leaves them (Fsck reports them); after a stop without Close (no
// marker) Open removes them and Fsck is clean.
func TestOpenAfterUncleanStopRemovesOrphans(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	data := chunktest.Content(7, 300_000)
	root, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	saved := map[string][]byte{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		if top := filepath.Dir(filepath.Dir(rel)); top == "chunks" || top == "manifests" {
			b, err := os.ReadFile(path)
			saved[path] = b
			return err
		}
		return nil
	})
	if err != nil || len(saved) < 2 {
		t.Fatalf("finding the object files: %d found, %v", len(saved), err)
	}
	if err := s.Remove(ctx, root); err != nil {
		t.Fatal(err)
	}
	for path, b := range saved { // what a kill after the index commit leaves
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = chunk.Open(dir, chunk.Options{Chunking: chunktest.Params})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fsck(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Orphans) != len(saved) {
		t.Fatalf("after a clean close: %d orphans reported, want the %d files left", len(rep.Orphans), len(saved))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "clean")); err != nil { // as if killed
		t.Fatal(err)
	}

	s, err = chunk.Open(dir, chunk.Options{Chunking: chunktest.Params})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rep, err = s.Fsck(ctx, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("after an unclean stop and Open: %+v %v", rep, err)
	}
	for path := range saved {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s is still there: %v", path, err)
		}
	}
}
