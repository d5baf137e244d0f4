package chunk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

func openStore(t *testing.T, dir string, opts chunk.Options) *chunk.Store {
	t.Helper()
	s, err := chunk.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	chunktest.Run(t, func(t *testing.T, dir string, opts chunk.Options) chunktest.Store {
		return openStore(t, dir, opts)
	})
}

// files lists every file under dir, relative to it.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() != "index.db" {
			out = append(out, strings.TrimPrefix(p, dir))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestSecondOpenRefused(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir, chunk.Options{})
	if s, err := chunk.Open(dir, chunk.Options{}); err == nil {
		s.Close()
		t.Fatal("second Open of the same store succeeded")
	}
}

func TestLimitWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Limit: 1 << 20, Chunking: chunktest.Params})
	if _, _, err := s.Put(ctx, bytes.NewReader(chunktest.Content(1, 500_000)), 500_000, ""); err != nil {
		t.Fatal(err)
	}
	before, st := files(t, dir), s.Stats()
	data := chunktest.Content(2, 600_000)
	if _, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), ""); !errors.Is(err, chunk.ErrNoSpace) {
		t.Fatalf("Put over the limit: %v", err)
	}
	if after := files(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") || s.Stats() != st {
		t.Fatalf("refused Put changed the store: %d files before, %d after", len(before), len(after))
	}
	s.SetLimit(0)
	if _, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatalf("Put after lifting the limit: %v", err)
	}
}

// chunkFiles returns the paths of the stored chunk files.
func chunkFiles(t *testing.T, dir string) []string {
	var out []string
	for _, f := range files(t, dir) {
		if strings.HasPrefix(f, "/chunks/") {
			out = append(out, filepath.Join(dir, f))
		}
	}
	return out
}

// chunkFileOf returns the path of the chunk file of id in the store at dir.
func chunkFileOf(t *testing.T, dir string, id fmt.Stringer) string {
	t.Helper()
	for _, f := range chunkFiles(t, dir) {
		if filepath.Base(f) == id.String() {
			return f
		}
	}
	t.Fatalf("no file for chunk %s under %s", id, dir)
	return ""
}

// putTestContent puts 300,000 bytes of chunktest content into s.
func putTestContent(t *testing.T, s *chunk.Store, seed uint64) (cid.Cid, *chunk.Manifest, []byte) {
	t.Helper()
	data := chunktest.Content(seed, 300_000)
	root, m, err := s.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	return root, m, data
}

func TestCorruptionOnRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	root, m, data := putTestContent(t, s, 3)
	victim := m.Chunks[2]
	file := chunkFileOf(t, dir, victim.CID)
	flipByte(t, file, 100)
	usedBefore := s.Stats().Used
	if _, err := s.GetChunk(ctx, victim.CID); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("GetChunk of a flipped chunk: %v, want ErrCorrupt", err)
	}
	st := s.Stats()
	if st.Corrupt != 1 || st.Used != usedBefore-int64(victim.Length) {
		t.Fatalf("stats after corruption: %+v", st)
	}
	if has, _ := s.HasChunk(victim.CID); has {
		t.Fatal("corrupt chunk still indexed")
	}
	if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("corrupt chunk file still in place: %v", err)
	}
	q, _ := os.ReadDir(filepath.Join(dir, "quarantine"))
	if len(q) != 1 {
		t.Fatalf("%d files in quarantine, want 1", len(q))
	}
	if miss, _ := s.Missing(ctx, root); len(miss) != 1 || miss[0].CID != victim.CID {
		t.Fatalf("Missing after quarantine: %v", miss)
	}
	if _, err := s.WriteTo(ctx, root, io.Discard); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("WriteTo with a quarantined chunk: %v", err)
	}
	// It can be fetched again.
	if err := s.PutChunk(ctx, victim.CID, data[victim.Offset:victim.Offset+int64(victim.Length)]); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(ctx, root, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("content after repair: %v", err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x20
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestFsck(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
	data := chunktest.Content(4, 300_000)
	root, m, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() || rep.Checked != len(m.Chunks) {
		t.Fatalf("fsck of a fresh store: %+v, %v", rep, err)
	}
	files := chunkFiles(t, dir)
	flipByte(t, files[0], 0)
	// An orphan: a chunk file the index does not know.
	orphan := chunktest.Content(5, 1000)
	id := chunk.SumChunk(orphan)
	opath := filepath.Join(filepath.Dir(files[0]), id.String())
	if err := os.WriteFile(opath, orphan, 0o644); err != nil {
		t.Fatal(err)
	}
	// An unreferenced chunk.
	loose := chunktest.Content(6, 2000)
	if err := s.PutChunk(ctx, chunk.SumChunk(loose), loose); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fsck(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || len(rep.Orphans) != 1 || len(rep.Unreferenced) != 1 || len(rep.Incomplete) != 1 || rep.Incomplete[0] != root {
		t.Fatalf("fsck report: %+v", rep)
	}
	if s.Stats().Corrupt != 1 {
		t.Fatalf("corrupt counter: %+v", s.Stats())
	}
	if _, err := os.Stat(opath); err != nil {
		t.Fatal("fsck without repair removed an orphan")
	}
	if rep, err = s.Fsck(ctx, true); err != nil || len(rep.Orphans) != 1 || len(rep.Unreferenced) != 1 {
		t.Fatalf("fsck with repair: %+v, %v", rep, err)
	}
	rep, err = s.Fsck(ctx, false)
	if err != nil || !rep.Clean() || len(rep.Incomplete) != 1 {
		t.Fatalf("fsck after repair: %+v, %v", rep, err)
	}
	var want int64
	for _, c := range m.Chunks {
		if has, _ := s.HasChunk(c.CID); has {
			want += int64(c.Length)
		}
	}
	if s.Stats().Used != want {
		t.Fatalf("used %d after repair, chunks add up to %d", s.Stats().Used, want)
	}
}

func TestOpenRemovesTemps(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, chunk.Options{})
	s.Close()
	tmp := filepath.Join(dir, "chunks", "ab", ".tmp-123")
	if err := os.WriteFile(tmp, []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	openStore(t, dir, chunk.Options{})
	if _, err := os.Stat(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file survived Open: %v", err)
	}
}

// failingWriter fails every write after the first.
type failingWriter struct{ writes int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.writes++; w.writes > 1 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestWriteToStopsAtFirstBadChunk checks that WriteTo, which reads ahead,
// writes exactly the chunks before a damaged one (flipped, truncated or
// extended file) and stops at a failing writer.
func TestWriteToStopsAtFirstBadChunk(t *testing.T) {
	ctx := t.Context()
	for _, damage := range []string{"flip", "truncate", "extend"} {
		t.Run(damage, func(t *testing.T) {
			dir := t.TempDir()
			s := openStore(t, dir, chunk.Options{Chunking: chunktest.Params})
			root, m, data := putTestContent(t, s, 4)
			if len(m.Chunks) < 6 {
				t.Fatalf("want at least 6 chunks, got %d", len(m.Chunks))
			}
			victim := m.Chunks[4]
			file := chunkFileOf(t, dir, victim.CID)
			switch damage {
			case "flip":
				flipByte(t, file, 7)
			case "truncate":
				if err := os.Truncate(file, int64(victim.Length)-1); err != nil {
					t.Fatal(err)
				}
			case "extend":
				if err := os.Truncate(file, int64(victim.Length)+1); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			n, err := s.WriteTo(ctx, root, &buf)
			if !errors.Is(err, chunk.ErrCorrupt) {
				t.Fatalf("WriteTo over a %s chunk: %v, want ErrCorrupt", damage, err)
			}
			if n != victim.Offset || !bytes.Equal(buf.Bytes(), data[:victim.Offset]) {
				t.Fatalf("wrote %d bytes before the bad chunk at %d", n, victim.Offset)
			}
		})
	}
	t.Run("writer fails", func(t *testing.T) {
		s := openStore(t, t.TempDir(), chunk.Options{Chunking: chunktest.Params})
		root, m, _ := putTestContent(t, s, 5)
		n, err := s.WriteTo(ctx, root, &failingWriter{})
		if err == nil || n != int64(m.Chunks[0].Length) {
			t.Fatalf("WriteTo into a failing writer: %d bytes, %v", n, err)
		}
	})
}
