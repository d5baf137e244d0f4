package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkErasurePut measures, in one run, a put on a client member of a
// swarm of 8 storage members with erasure = 4+2 (time until put returns at
// the success threshold, time until all 6 shard sets are placed, bytes the
// uploader sent, bytes the members store) against a put of the same size in
// a swarm of one storage member with copies = 1 (a single-copy transfer).
// The file is 256 MiB, or ANNEX_SWARM_BENCH_MIB MiB.
//
//	go test ./test -run XXX -bench BenchmarkErasurePut -benchtime 1x -v
func BenchmarkErasurePut(b *testing.B) {
	size := int64(256) << 20
	if v, err := strconv.Atoi(os.Getenv("ANNEX_SWARM_BENCH_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	single := benchSwarm(b, 1, harness.SwarmOptions{Copies: 1, CopiesMin: 1})
	var nodes []*harness.Node
	for i := range 9 {
		nodes = append(nodes, harness.NewNode(b, bin, "e"+strconv.Itoa(i), harness.Options{Args: replArgs}))
	}
	c := harness.Of(bin, nodes...)
	s := c.FormSwarm(b, harness.SwarmOptions{Copies: 2, CopiesMin: 2, Roles: map[int]string{8: "client"}})
	c.MustRun(b, "rules", "set", s.Rules, "--key", s.Key, "erasure=4+2")
	nodes[0].MustCLI("rules", "push", s.Rules)
	want := swarmVersion(nodes[0])
	laptop := nodes[8]
	harness.WaitFor(b, 2*time.Minute, "erasure rules everywhere, the client connected to all", func() bool {
		for _, n := range nodes {
			if swarmVersion(n) != want || (n != laptop && !connectedTo(laptop, n.PeerID)) {
				return false
			}
		}
		return true
	})
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		src1 := filepath.Join(dir, "one"+strconv.Itoa(i))
		srcE := filepath.Join(dir, "coded"+strconv.Itoa(i))
		writeRandomFile(b, src1, size, uint64(60+2*i))
		writeRandomFile(b, srcE, size, uint64(61+2*i))

		start := time.Now()
		benchPut(b, single, src1)
		one := time.Since(start)

		var used0 int64
		for _, n := range nodes[:8] {
			used0 += n.StatusJSON().Store.Used
		}
		sent0 := laptop.StatusJSON().BytesSent
		start = time.Now()
		root := benchPut(b, laptop, srcE)
		success := time.Since(start)
		deadline := time.Now().Add(10 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			w, err := laptop.Client().Where(ctx, root)
			cancel()
			if err == nil && w.Placed >= 6 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("6 shard sets not placed in 10 minutes: %+v %v", w, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		all := time.Since(start)
		sent := laptop.StatusJSON().BytesSent - sent0
		var used int64
		for _, n := range nodes[:8] {
			used += n.StatusJSON().Store.Used
		}
		stored := used - used0

		b.ReportMetric(one.Seconds(), "s-1copy")
		b.ReportMetric(success.Seconds(), "s-success")
		b.ReportMetric(all.Seconds(), "s-6sets")
		b.ReportMetric(float64(sent)/float64(size), "upload-x-size")
		b.ReportMetric(float64(stored)/float64(size), "stored-x-size")
		b.Logf("%d MiB: 1 copy %v; coded put (5 sets) %v; 6 sets %v (%.2f× one copy); uploader sent %.3f×, members store %.3f× the size",
			size>>20, one.Round(10*time.Millisecond), success.Round(10*time.Millisecond), all.Round(10*time.Millisecond),
			all.Seconds()/one.Seconds(), float64(sent)/float64(size), float64(stored)/float64(size))
	}
}
