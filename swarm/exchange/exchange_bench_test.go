package exchange

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/internal/directio"
)

// Benchmarks of docs/PERFORMANCE-exchange.md. The content size is
// ANNEX_SWARM_BENCH_MIB MiB (256 when unset), chunked with the default parameters.

func benchSize(b *testing.B) int64 {
	mib := int64(256)
	if v := os.Getenv("ANNEX_SWARM_BENCH_MIB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("ANNEX_SWARM_BENCH_MIB=%q", v)
		}
		mib = n
	}
	return mib << 20
}

// benchContent is a deterministic pseudo-random stream of size bytes.
func benchContent(size int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
}

// fetchInto fetches root with a fresh store on g's host and returns the
// final progress and the time taken. The store is removed afterwards.
func fetchInto(b *testing.B, g *node, run func(x *Exchange) (FetchProgress, error)) (FetchProgress, time.Duration) {
	b.Helper()
	b.StopTimer()
	dir := b.TempDir()
	st, err := chunk.Open(dir, chunk.Options{})
	if err != nil {
		b.Fatal(err)
	}
	x := New(Options{Host: g.h, Store: st, Logger: g.x.log, Members: g.getMembers})
	x.SetSwarm(testSwarmID)
	b.StartTimer()
	start := time.Now()
	p, err := run(x)
	el := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	st.Close()
	os.RemoveAll(dir)
	return p, el
}

func BenchmarkFetchOneSource(b *testing.B) {
	benchOneSource(b, func(x *Exchange, root cid.Cid) error { return x.Fetch(context.Background(), root, nil) })
}

// benchOneSource times fetch, b.N times, of a content held by one source,
// each into a fresh store on the getter.
func benchOneSource(b *testing.B, fetch func(x *Exchange, root cid.Cid) error) {
	size := benchSize(b)
	n := newNodes(b, 2, nodeConfig{params: chunk.DefaultParams})
	g, src := n[0], n[1]
	root, _, err := src.st.Put(context.Background(), benchContent(size), size, "")
	if err != nil {
		b.Fatal(err)
	}
	// Let the source's writes reach the disk first: on one machine the
	// source and the getter share it, which two hosts would not.
	syscall.Sync()
	g.connect(b, src)
	b.SetBytes(size)
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		_, el := fetchInto(b, g, func(x *Exchange) (FetchProgress, error) {
			return FetchProgress{}, fetch(x, root)
		})
		total += el
	}
	b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/(1<<20), "MiB/s")
}

// BenchmarkStreamCopy is the baseline: the same bytes over one plain libp2p
// stream between the same kind of hosts, written to a file and fsynced.
func BenchmarkStreamCopy(b *testing.B) {
	size := benchSize(b)
	n := newNodes(b, 2, nodeConfig{})
	g, src := n[0], n[1]
	buf := make([]byte, 4<<20)
	if _, err := io.ReadFull(benchContent(int64(len(buf))), buf); err != nil {
		b.Fatal(err)
	}
	const pid protocol.ID = "/annex-swarm-bench/copy/1.0.0"
	src.h.SetStreamHandler(pid, func(s network.Stream) {
		for left := size; left > 0; {
			k := min(left, int64(len(buf)))
			if _, err := s.Write(buf[:k]); err != nil {
				s.Reset()
				return
			}
			left -= k
		}
		s.Close()
	})
	g.connect(b, src)
	b.SetBytes(size)
	b.ResetTimer()
	var total time.Duration
	for range b.N {
		start := time.Now()
		copyTo(b, g, src.h.ID(), pid, filepath.Join(b.TempDir(), "copy"), size)
		total += time.Since(start)
	}
	b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/(1<<20), "MiB/s")
}

func copyTo(b *testing.B, g *node, p peer.ID, pid protocol.ID, path string, size int64) {
	s, err := g.h.NewStream(context.Background(), p, pid)
	if err != nil {
		b.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.CopyBuffer(f, s, make([]byte, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || n != size {
		b.Fatalf("copied %d of %d bytes: %v", n, size, err)
	}
	s.Close()
	b.StopTimer()
	os.Remove(path)
	b.StartTimer()
}

// BenchmarkFetchFourSourcesLimited: four sources each capped at 16 MiB/s
// upload; the physical limit is 64 MiB/s. Each source's bucket starts full
// (one 4 MiB chunk of burst).
func BenchmarkFetchFourSourcesLimited(b *testing.B) {
	size := benchSize(b)
	n := newNodes(b, 5, nodeConfig{params: chunk.DefaultParams})
	g := n[0]
	var root cid.Cid
	for _, src := range n[1:] {
		r, _, err := src.st.Put(context.Background(), benchContent(size), size, "")
		if err != nil {
			b.Fatal(err)
		}
		root = r
		src.x.SetLimits(16<<20, 0)
	}
	g.connect(b, n[1:]...)
	b.SetBytes(size)
	b.ResetTimer()
	var total time.Duration
	var dup int64
	for range b.N {
		p, el := fetchInto(b, g, func(x *Exchange) (FetchProgress, error) {
			var pl progressLog
			err := x.Fetch(context.Background(), root, pl.record)
			return pl.get(), err
		})
		total += el
		dup += p.Duplicates
		if b.N == 1 {
			b.Logf("per source %v", p.Sources)
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/total.Seconds()/(1<<20), "MiB/s")
	b.ReportMetric(100*float64(dup)/float64(size*int64(b.N)), "dup%")
}

// BenchmarkStorePutChunks is the fetcher's storage ceiling: the chunks of
// the same content stored with PutChunk by as many workers as the fetcher
// uses, no network.
func BenchmarkStorePutChunks(b *testing.B) {
	size := benchSize(b)
	ctx := context.Background()
	n := newNodes(b, 1, nodeConfig{params: chunk.DefaultParams})
	_, m, err := n[0].st.Put(ctx, benchContent(size), size, "")
	if err != nil {
		b.Fatal(err)
	}
	data := make([][]byte, len(m.Chunks))
	for i, r := range m.Chunks {
		if data[i], err = n[0].st.GetChunk(ctx, r.CID); err != nil {
			b.Fatal(err)
		}
	}
	workers := FetchOptions{}.withDefaults().StoreWorkers
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		st, err := chunk.Open(dir, chunk.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := st.PutManifest(ctx, m); err != nil {
			b.Fatal(err)
		}
		next := make(chan int)
		b.StartTimer()
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := range next {
					if err := st.PutChunk(ctx, m.Chunks[i].CID, data[i]); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for i := range m.Chunks {
			next <- i
		}
		close(next)
		wg.Wait()
		b.StopTimer()
		st.Close()
		os.RemoveAll(dir)
	}
}

// BenchmarkFetchIntoOneSource is a client member's get from one source:
// FetchInto an output file written around the page cache and fsynced at
// the end, nothing stored (the path of BenchmarkGetOneSource in test/, in
// one process). Compare with BenchmarkStreamCopy in the same run.
func BenchmarkFetchIntoOneSource(b *testing.B) {
	benchOneSource(b, func(x *Exchange, root cid.Cid) error {
		f, err := os.Create(filepath.Join(b.TempDir(), "out"))
		if err != nil {
			return err
		}
		defer f.Close()
		w := directio.Open(f) // as the daemon's durable get writes
		_, err = x.FetchInto(context.Background(), root, w, nil)
		if ferr := w.Finish(); err == nil {
			err = ferr
		}
		if err != nil {
			return err
		}
		return f.Sync()
	})
}
