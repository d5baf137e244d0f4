package directio

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// The cost of writing a file through the page cache and around it, as a
// fetch writes chunks: 1 MiB pieces at increasing offsets, one fsync at
// the end. ANNEX_SWARM_BENCH_MIB sets the size (1024 when unset). Metrics:
// MB/s and the kernel CPU spent per GiB written (getrusage).
//
//	go test ./internal/directio -run '^$' -bench Write -benchtime 3x

func BenchmarkWriteBuffered(b *testing.B) { benchWrite(b, false) }

func BenchmarkWriteDirect(b *testing.B) { benchWrite(b, true) }

func benchWrite(b *testing.B, direct bool) {
	size := int64(1024 << 20)
	if v, err := strconv.ParseInt(os.Getenv("ANNEX_SWARM_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	piece := make([]byte, 1<<20)
	for i := range piece {
		piece[i] = byte(i * 7)
	}
	dir := b.TempDir()
	var wall, sys time.Duration
	for range b.N {
		f, err := os.Create(filepath.Join(dir, "out"))
		if err != nil {
			b.Fatal(err)
		}
		var w io.WriterAt = f
		var dw *Writer
		if direct {
			if dw = Open(f); !dw.Direct() {
				b.Skip("this filesystem refuses O_DIRECT")
			}
			w = dw
		}
		before := sysTime(b)
		start := time.Now()
		for off := int64(0); off < size; off += int64(len(piece)) {
			if _, err := w.WriteAt(piece, off); err != nil {
				b.Fatal(err)
			}
		}
		if dw != nil {
			if err := dw.Finish(); err != nil {
				b.Fatal(err)
			}
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		wall += time.Since(start)
		sys += sysTime(b) - before
		f.Close()
		os.Remove(f.Name())
	}
	gib := float64(size) * float64(b.N) / (1 << 30)
	b.ReportMetric(float64(size)*float64(b.N)/1e6/wall.Seconds(), "MB/s")
	b.ReportMetric(sys.Seconds()/gib, "sys_s/GiB")
}

// sysTime is the kernel CPU time this process has used.
func sysTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(syscall.TimevalToNsec(ru.Stime))
}
