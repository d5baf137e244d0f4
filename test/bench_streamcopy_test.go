package test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// BenchmarkStreamCopyFsync is the baseline of BenchmarkGetOneSource: the
// same number of bytes over one libp2p stream between two hosts built as
// the daemons build theirs (loopback TCP), written to a file on the same
// disk and fsynced once. Run both with -bench 'GetOneSource|StreamCopyFsync'
// for a same-run ratio (docs/PERFORMANCE.md).
func BenchmarkStreamCopyFsync(b *testing.B) {
	size := benchSize()
	hs := swarmtest.Hosts(b, 2)
	src, dst := hs[0].Host, hs[1].Host
	buf := make([]byte, 4<<20)
	if _, err := io.ReadFull(io.LimitReader(rand.NewChaCha8([32]byte{9}), int64(len(buf))), buf); err != nil {
		b.Fatal(err)
	}
	const pid protocol.ID = "/annex-swarm-bench/copy/1.0.0"
	src.SetStreamHandler(pid, func(s network.Stream) {
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
	swarmtest.Connect(b, dst, src)
	dir := b.TempDir()
	var elapsed time.Duration
	for range b.N {
		start := time.Now()
		s, err := dst.NewStream(context.Background(), src.ID(), pid)
		if err != nil {
			b.Fatal(err)
		}
		path := filepath.Join(dir, "copy")
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
		elapsed += time.Since(start)
		s.Close()
		os.Remove(path)
	}
	b.ReportMetric(float64(size)*float64(b.N)/1e6/elapsed.Seconds(), "copy_MB/s")
}
