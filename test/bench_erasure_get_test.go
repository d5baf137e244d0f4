package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// BenchmarkErasureGetFourCapped: a get of a coded content (4+2) from four
// holders whose upload is capped at 16 MiB/s each ([limits] upload), on a
// client member that never held it (issue 12: ≥ 90 % of 64 MiB/s). Six
// storage members take the put from an unlimited client; then the
// uploader stops and the two parity holders are killed, so the getter has
// exactly the four data holders. The baseline is the same swarm's cap,
// 4 × 16 MiB/s; it reports the rate over the whole get (asking the
// holders included) and over the transfer (first byte to last). The file
// is 256 MiB, or ANNEX_SWARM_BENCH_MIB MiB.
//
//	go test ./test -run XXX -bench BenchmarkErasureGetFourCapped -benchtime 1x -v
func BenchmarkErasureGetFourCapped(b *testing.B) {
	size := int64(256) << 20
	if v, err := strconv.Atoi(os.Getenv("ANNEX_SWARM_BENCH_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	if b.N > 1 {
		b.Skip("one get per swarm (the holders are killed): run with -benchtime 1x")
	}
	const capMiB = 16
	cs := formCodedSwarm(b, 6, "[limits]\nupload = \""+strconv.Itoa(capMiB)+"MiB/s\"\n", "laptop", "desktop")
	laptop, desktop := cs.clients[0], cs.clients[1]
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		src := filepath.Join(dir, "src"+strconv.Itoa(i))
		sum := writeRandomFile(b, src, size, uint64(70+i))
		root := codedPut(b, laptop, src)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		w, err := laptop.Client().Where(ctx, root)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		// Only the four data holders stay: the uploader holds the whole
		// content (the getter would fetch whole chunks from it) and the
		// parity holders are not needed.
		if err := laptop.Stop(); err != nil {
			b.Fatal(err)
		}
		for _, h := range w.Shards {
			if len(h.Sets) == 1 && h.Sets[0] >= 4 {
				memberByName(cs.c, h.Member).Kill()
			}
		}
		b.StartTimer()

		out := filepath.Join(dir, "out"+strconv.Itoa(i))
		var mu sync.Mutex
		var first time.Time
		var sources map[string]int64
		start := time.Now()
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Minute)
		_, err = desktop.Client().Get(ctx, client.GetRequest{CID: root, Path: out}, func(p client.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if first.IsZero() && p.Bytes > 0 {
				first = time.Now()
			}
			if p.Sources != nil {
				sources = p.Sources
			}
		})
		cancel()
		end := time.Now()
		if err != nil {
			b.Fatalf("get: %v\n%s", err, desktop.LogTail(40))
		}
		b.StopTimer()
		if fileSHA256(b, out) != sum {
			b.Fatal("the file got back differs")
		}
		mib := float64(size) / (1 << 20)
		whole := mib / end.Sub(start).Seconds()
		transfer := mib / end.Sub(first).Seconds()
		b.ReportMetric(whole, "MiB/s")
		b.ReportMetric(transfer, "MiB/s-transfer")
		b.ReportMetric(whole/(4*capMiB), "x-cap")
		b.Logf("%d MiB from 4 holders at %d MiB/s each: get %v = %.1f MiB/s (%.2f × the %d MiB/s cap); first byte to last %v = %.1f MiB/s (%.2f ×); sources %v",
			size>>20, capMiB, end.Sub(start).Round(10*time.Millisecond), whole, whole/(4*capMiB), 4*capMiB,
			end.Sub(first).Round(10*time.Millisecond), transfer, transfer/(4*capMiB), sources)
		b.StartTimer()
	}
}
