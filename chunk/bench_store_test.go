package chunk_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

const benchFileSize = 1 << 30

// benchFile writes a 1 GiB pseudo-random file and returns its path.
func benchFile(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "src")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(f, newGenReader(9, benchFileSize)); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkStorePut puts a 1 GiB file from disk into an empty store.
func BenchmarkStorePut(b *testing.B) {
	src := benchFile(b)
	ctx := context.Background()
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, err := chunk.Open(b.TempDir(), chunk.Options{})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, _, err := s.Put(ctx, f, benchFileSize, ""); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		s.Close()
		b.StartTimer()
	}
}

// BenchmarkCopySync is the baseline for BenchmarkStorePut: copy the same
// file to a new one and fsync it.
func BenchmarkCopySync(b *testing.B) {
	src := benchFile(b)
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for range b.N {
		in, err := os.Open(src)
		if err != nil {
			b.Fatal(err)
		}
		out, err := os.Create(filepath.Join(b.TempDir(), "dst"))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			b.Fatal(err)
		}
		if err := out.Sync(); err != nil {
			b.Fatal(err)
		}
		out.Close()
		in.Close()
	}
}

// BenchmarkStoreWriteTo reassembles a 1 GiB file from the store.
func BenchmarkStoreWriteTo(b *testing.B) {
	ctx := context.Background()
	s, err := chunk.Open(b.TempDir(), chunk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	root, _, err := s.Put(ctx, newGenReader(9, benchFileSize), benchFileSize, "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(benchFileSize)
	b.ResetTimer()
	for range b.N {
		if _, err := s.WriteTo(ctx, root, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDedup256 stores 256 MiB, then the same with a 1 MiB edit in the
// middle, and reports how much the store grew (growth-MiB).
func BenchmarkDedup256(b *testing.B) {
	const size = 256 << 20
	ctx := context.Background()
	data := chunktest.Content(1, size)
	edited := bytes.Clone(data)
	copy(edited[size/2:], chunktest.Content(2, 1<<20))
	b.SetBytes(2 * size)
	b.ResetTimer()
	for range b.N {
		s, err := chunk.Open(b.TempDir(), chunk.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := s.Put(ctx, bytes.NewReader(data), size, ""); err != nil {
			b.Fatal(err)
		}
		before := s.Stats().Used
		if _, _, err := s.Put(ctx, bytes.NewReader(edited), size, ""); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(s.Stats().Used-before)/(1<<20), "growth-MiB")
		s.Close()
	}
}

// smallSize is the content size of the small-put benchmarks: the chunk
// keys of git-annex's chunked remotes and testremote are about this small.
const smallSize = 1 << 10

// BenchmarkStorePutSmall puts distinct 1 KiB contents one after another:
// the latency of a small put (a chunk file, its folder and one index
// commit, each synced).
func BenchmarkStorePutSmall(b *testing.B) {
	s, err := chunk.Open(b.TempDir(), chunk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	data := make([]byte, smallSize)
	b.SetBytes(smallSize)
	b.ResetTimer()
	for i := range b.N {
		copy(data, fmt.Sprintf("content %d", i))
		if _, _, err := s.Put(ctx, bytes.NewReader(data), smallSize, ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteSyncSmall is the baseline for BenchmarkStorePutSmall: what
// a directory special remote does at best, a new 1 KiB file written, synced
// and renamed into place, and its folder synced.
func BenchmarkWriteSyncSmall(b *testing.B) {
	dir := b.TempDir()
	data := make([]byte, smallSize)
	b.SetBytes(smallSize)
	b.ResetTimer()
	for i := range b.N {
		tmp := filepath.Join(dir, "tmp")
		f, err := os.Create(tmp)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if err := os.Rename(tmp, filepath.Join(dir, fmt.Sprint(i))); err != nil {
			b.Fatal(err)
		}
		d, err := os.Open(dir)
		if err != nil {
			b.Fatal(err)
		}
		if err := d.Sync(); err != nil {
			b.Fatal(err)
		}
		d.Close()
	}
}
