package chunk_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// The store-layout measurement of docs/PERFORMANCE.md "Store layout": the
// same received chunks stored the way the fetcher stores them (batches of
// a batch, each durable and indexed before the next is acknowledged),
// three ways, in one run:
//
//   - BenchmarkLayoutFiles: today's store, PutChunks (one file per chunk,
//     written and fsynced side by side, each folder synced once, one index
//     commit per batch);
//   - BenchmarkLayoutPack: a pack-file prototype (restic/kopia style): the
//     batch appended to one pack file, one fsync, one bbolt commit
//     recording the batch's offsets;
//   - BenchmarkLayoutOneFile: the ceiling, the same bytes appended to one
//     file and fsynced once at the end (what a stream copy does).
//
// The size is ANNEX_SWARM_BENCH_MIB MiB (256 when unset), in 1 MiB chunks.

// layoutBatches are the batch sizes measured: the fetcher's (8 chunks)
// and one the size of a typical pack (64 MiB).
var layoutBatches = []int{8, 64}

// layoutChunks returns the benchmark's chunks and their total size.
func layoutChunks(b *testing.B) ([]chunk.ChunkData, int64) {
	b.Helper()
	mib := 256
	if v := os.Getenv("ANNEX_SWARM_BENCH_MIB"); v != "" {
		var n int
		for _, c := range v {
			n = n*10 + int(c-'0')
		}
		if n > 0 {
			mib = n
		}
	}
	items := make([]chunk.ChunkData, mib)
	for i := range items {
		data := chunktest.Content(uint64(1000+i), 1<<20)
		items[i] = chunk.ChunkData{CID: chunk.SumChunk(data), Data: data}
	}
	return items, int64(mib) << 20
}

func BenchmarkLayoutFiles(b *testing.B) {
	for _, n := range layoutBatches {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) { layoutFiles(b, n) })
	}
}

func BenchmarkLayoutPack(b *testing.B) {
	for _, n := range layoutBatches {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) { layoutPack(b, n) })
	}
}

func layoutFiles(b *testing.B, layoutBatch int) {
	items, size := layoutChunks(b)
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		s, err := chunk.Open(dir, chunk.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		for i := 0; i < len(items); i += layoutBatch {
			for _, err := range s.PutChunks(ctx, items[i:min(i+layoutBatch, len(items))]) {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func layoutPack(b *testing.B, layoutBatch int) {
	items, size := layoutChunks(b)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		pack, err := os.OpenFile(filepath.Join(dir, "pack-0"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var off uint64
		var buf bytes.Buffer
		for i := 0; i < len(items); i += layoutBatch {
			batch := items[i:min(i+layoutBatch, len(items))]
			buf.Reset()
			offs := make([]uint64, len(batch))
			for j, it := range batch {
				if err := chunk.VerifyChunk(it.CID, it.Data); err != nil {
					b.Fatal(err)
				}
				offs[j] = off + uint64(buf.Len())
				buf.Write(it.Data)
			}
			if _, err := pack.Write(buf.Bytes()); err != nil {
				b.Fatal(err)
			}
			off += uint64(buf.Len())
			if err := pack.Sync(); err != nil {
				b.Fatal(err)
			}
			err := db.Update(func(tx *bolt.Tx) error {
				bk, err := tx.CreateBucketIfNotExists([]byte("chunks"))
				if err != nil {
					return err
				}
				for j, it := range batch {
					v := make([]byte, 12)
					putUint64(v, offs[j])
					if err := bk.Put(it.CID.Bytes(), v); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		pack.Close()
		db.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

func BenchmarkLayoutOneFile(b *testing.B) {
	items, size := layoutChunks(b)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "copy")
		b.StartTimer()
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		for _, it := range items {
			if _, err := f.Write(it.Data); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.StopTimer()
		os.Remove(path)
		b.StartTimer()
	}
}

func putUint64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (56 - 8*i))
	}
}
