package test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// peakRSS reads the peak resident set size (VmHWM) of a process, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

// benchSize is the file size of the put benchmarks: ANNEX_SWARM_BENCH_MIB, 1 GiB by default.
func benchSize() int64 {
	if v, err := strconv.ParseInt(os.Getenv("ANNEX_SWARM_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		return v << 20
	}
	return 1 << 30
}

// BenchmarkPutVsCopySync puts a file into a real daemon's store through the
// CLI, and in the same run copies it with cp and syncs it (the baseline).
// Metrics: put and cp+sync in MB/s, their time ratio, and the daemon's peak RSS.
func BenchmarkPutVsCopySync(b *testing.B) {
	size := benchSize()
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	writeRandomFile(b, src, size, 7)
	var putTime, cpTime time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		n := harness.NewNode(b, bin, fmt.Sprintf("bench%d", i), harness.Options{})
		exec.Command("sync").Run()
		start := time.Now()
		n.MustCLI("put", src)
		putTime += time.Since(start)
		r, err := peakRSS(n.Pid())
		if err != nil {
			b.Fatal(err)
		}
		rss = max(rss, r)
		n.Node.Stop()

		dst := filepath.Join(dir, fmt.Sprintf("copy%d.bin", i))
		exec.Command("sync").Run()
		start = time.Now()
		if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v %s", err, out)
		}
		if out, err := exec.Command("sync", dst).CombinedOutput(); err != nil {
			b.Fatalf("sync: %v %s", err, out)
		}
		cpTime += time.Since(start)
		os.Remove(dst)
	}
	mb := float64(size) * float64(b.N) / 1e6
	b.ReportMetric(mb/putTime.Seconds(), "put_MB/s")
	b.ReportMetric(mb/cpTime.Seconds(), "cp+sync_MB/s")
	b.ReportMetric(putTime.Seconds()/cpTime.Seconds(), "put/cp_ratio")
	b.ReportMetric(float64(rss)/(1<<20), "peak_rss_MiB")
}

// BenchmarkDaemonRSSPut4GiB stores a 4 GiB file through a real daemon, reads
// it back out, and reports the daemon's peak RSS (goal: at most 150 MiB).
func BenchmarkDaemonRSSPut4GiB(b *testing.B) {
	const size = 4 << 30
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	writeRandomFile(b, src, size, 8)
	var rss int64
	var elapsed time.Duration
	for i := 0; i < b.N; i++ {
		n := harness.NewNode(b, bin, fmt.Sprintf("rss%d", i), harness.Options{})
		// Sample while the put runs too, in case the peak is transient.
		var done atomic.Bool
		go func() {
			for !done.Load() {
				if r, err := peakRSS(n.Pid()); err == nil && r > atomic.LoadInt64(&rss) {
					atomic.StoreInt64(&rss, r)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		start := time.Now()
		res, err := n.Client().Put(context.Background(), client.PutRequest{Path: src}, nil)
		if err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		// Reading it back out of the store must stay as small.
		out := filepath.Join(dir, "out.bin")
		if _, err := n.Client().Get(context.Background(), client.GetRequest{CID: res.CID, Path: out}, nil); err != nil {
			b.Fatal(err)
		}
		os.Remove(out)
		r, err := peakRSS(n.Pid())
		if err != nil {
			b.Fatal(err)
		}
		done.Store(true)
		rss = max(atomic.LoadInt64(&rss), r)
		n.Node.Stop()
	}
	b.ReportMetric(float64(size)*float64(b.N)/1e6/elapsed.Seconds(), "put_MB/s")
	b.ReportMetric(float64(rss)/(1<<20), "peak_rss_MiB")
}

// BenchmarkGetOneSource fetches a file held by one other daemon (no limits)
// and reports the getter's throughput and peak RSS. The file size is
// ANNEX_SWARM_BENCH_MIB (1 GiB by default; 4096 for the memory goal).
func BenchmarkGetOneSource(b *testing.B) {
	size := benchSize()
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	writeRandomFile(b, src, size, 9)
	var elapsed time.Duration
	var rss int64
	for i := 0; i < b.N; i++ {
		c := harness.New(b, bin, 2, harness.Options{})
		c.FormSwarm(b, harness.SwarmOptions{Copies: 1, CopiesMin: 1, Roles: map[int]string{1: "client"}})
		holder, getter := c.Nodes[0], c.Nodes[1]
		root := harness.LastLine(holder.MustCLI("put", src))
		out := filepath.Join(dir, "out.bin")
		exec.Command("sync").Run()
		start := time.Now()
		if _, err := getter.Client().Get(context.Background(), client.GetRequest{CID: root, Path: out}, nil); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		r, err := peakRSS(getter.Pid())
		if err != nil {
			b.Fatal(err)
		}
		rss = max(rss, r)
		os.Remove(out)
		for _, n := range c.Nodes {
			n.Node.Stop()
		}
	}
	b.ReportMetric(float64(size)*float64(b.N)/1e6/elapsed.Seconds(), "get_MB/s")
	b.ReportMetric(float64(rss)/(1<<20), "getter_peak_rss_MiB")
}
