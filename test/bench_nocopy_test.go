package test

import (
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkClientGetFourHolders (issue 11, Show): a client member puts a
// file to 4 uncapped storage members (copies=4, copies_min=4), then gets it
// back from all four into an output file, with the CLI; in the same run a
// raw TCP copy of the file on loopback into a file, fsynced (the baseline,
// taken before and after the get, its time the mean of the two).
// Metrics: the get and the baseline in MB/s, their ratio, and the client's
// home growth on put and on get as a share of the file (the daemon's log
// left out). The size is ANNEX_SWARM_BENCH_MIB, 256 MiB by default.
func BenchmarkClientGetFourHolders(b *testing.B) {
	size := int64(256 << 20)
	if v, err := strconv.ParseInt(os.Getenv("ANNEX_SWARM_BENCH_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	dir := b.TempDir()
	src := filepath.Join(dir, "src.bin")
	sum := writeRandomFile(b, src, size, 61)
	var get, raw time.Duration
	var putGrowth, getGrowth int64
	for i := 0; i < b.N; i++ {
		laptop := benchSwarm(b, 4, harness.SwarmOptions{Copies: 4, CopiesMin: 4})
		before := homeBytes(b, laptop)
		root := benchPut(b, laptop, src)
		putGrowth = max(putGrowth, homeBytes(b, laptop)-before)

		// The baseline before and after the get, each from a synced
		// disk, counted as their mean: on this virtual disk a copy's time
		// depends on the writes before it (docs/PERFORMANCE.md).
		rawCopy := func() {
			exec.Command("sync").Run()
			raw += rawTCPCopy(b, src, filepath.Join(dir, "raw.bin")) / 2
			os.Remove(filepath.Join(dir, "raw.bin"))
			exec.Command("sync").Run()
		}
		rawCopy()

		out := filepath.Join(dir, "out.bin")
		before = homeBytes(b, laptop)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		_, err := laptop.Client().Get(ctx, client.GetRequest{CID: root, Path: out}, nil)
		cancel()
		if err != nil {
			b.Fatalf("get: %v\n%s", err, laptop.LogTail(30))
		}
		get += time.Since(start)
		getGrowth = max(getGrowth, homeBytes(b, laptop)-before)
		if fileSHA256(b, out) != sum {
			b.Fatal("the get wrote other bytes")
		}
		os.Remove(out)
		rawCopy()
	}
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbs(get), "get_MB/s")
	b.ReportMetric(mbs(raw), "raw_tcp_MB/s")
	b.ReportMetric(raw.Seconds()/get.Seconds(), "ratio")
	b.ReportMetric(100*float64(putGrowth)/float64(size), "put_home_growth_%")
	b.ReportMetric(100*float64(getGrowth)/float64(size), "get_home_growth_%")
	b.Logf("%d MiB from 4 holders: get %v, raw TCP copy %v (%.2f of it); home growth: put %d bytes, get %d bytes",
		size>>20, get/time.Duration(b.N), raw/time.Duration(b.N), raw.Seconds()/get.Seconds(), putGrowth, getGrowth)
}

// rawTCPCopy sends src over a loopback TCP connection into dst, fsynced,
// and returns the time from the dial to the fsync's end.
func rawTCPCopy(b *testing.B, src, dst string) time.Duration {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	recvd := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			recvd <- err
			return
		}
		defer c.Close()
		f, err := os.Create(dst)
		if err != nil {
			recvd <- err
			return
		}
		_, err = io.Copy(f, c)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		recvd <- err
	}()
	start := time.Now()
	in, err := os.Open(src)
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(c, in); err != nil {
		b.Fatal(err)
	}
	c.Close()
	select {
	case err := <-recvd:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(5 * time.Minute):
		b.Fatal("raw TCP copy: no end in 5 minutes")
	}
	return time.Since(start)
}
