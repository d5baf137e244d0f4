package test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkReplicationSeed measures, in one run, a put on a client member
// of a swarm of 5 storage members with copies=4, copies_min=2 (time until
// put returns, time until 4 verified copies, bytes sent by the uploader),
// against a put in a swarm of one storage member with copies=1 (a
// single-copy transfer). The file is 256 MiB, or
// ANNEX_SWARM_BENCH_MIB MiB. ANNEX_SWARM_BENCH_UPLOAD (e.g. 16MiB/s) caps
// every daemon's upload: capped seeding. ANNEX_SWARM_BENCH_MIN sets
// copies_min (2 by default; 1 puts one first holder ahead of the others,
// docs/REPLICATION.md "copies_min first").
//
//	go test ./test -run XXX -bench BenchmarkReplicationSeed -benchtime 1x -v
//	ANNEX_SWARM_BENCH_MIB=128 ANNEX_SWARM_BENCH_UPLOAD=16MiB/s go test ./test -run XXX -bench BenchmarkReplicationSeed -benchtime 1x -v
func BenchmarkReplicationSeed(b *testing.B) {
	size := int64(256) << 20
	if v, err := strconv.Atoi(os.Getenv("ANNEX_SWARM_BENCH_MIB")); err == nil && v > 0 {
		size = int64(v) << 20
	}
	single := benchSwarm(b, 1, harness.SwarmOptions{Copies: 1, CopiesMin: 1})
	copiesMin := 2
	if v, err := strconv.Atoi(os.Getenv("ANNEX_SWARM_BENCH_MIN")); err == nil && v > 0 {
		copiesMin = v
	}
	multi := benchSwarm(b, 5, harness.SwarmOptions{Copies: 4, CopiesMin: copiesMin})
	dir := b.TempDir()
	b.ResetTimer()
	for i := range b.N {
		src1 := filepath.Join(dir, "one"+strconv.Itoa(i))
		src4 := filepath.Join(dir, "four"+strconv.Itoa(i))
		writeRandomFile(b, src1, size, uint64(40+2*i))
		writeRandomFile(b, src4, size, uint64(41+2*i))

		start := time.Now()
		benchPut(b, single, src1)
		one := time.Since(start)

		sent0 := multi.StatusJSON().BytesSent
		start = time.Now()
		root := benchPut(b, multi, src4)
		minDone := time.Since(start)
		deadline := time.Now().Add(10 * time.Minute)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			w, err := multi.Client().Where(ctx, root)
			cancel()
			if err == nil && w.Copies >= 4 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("4 copies not reached in 10 minutes: %+v %v", w, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		four := time.Since(start)
		sent := multi.StatusJSON().BytesSent - sent0

		b.ReportMetric(one.Seconds(), "s-1copy")
		b.ReportMetric(minDone.Seconds(), "s-copies_min")
		b.ReportMetric(four.Seconds(), "s-4copies")
		b.ReportMetric(four.Seconds()/one.Seconds(), "ratio-4/1")
		b.ReportMetric(minDone.Seconds()/one.Seconds(), "ratio-min/1")
		b.ReportMetric(float64(sent)/float64(size), "upload-x-size")
		b.Logf("%d MiB: 1 copy %v; copies_min (%d) %v; 4 copies %v (%.2f×); uploader sent %.3f× the size",
			size>>20, one.Round(10*time.Millisecond), copiesMin, minDone.Round(10*time.Millisecond), four.Round(10*time.Millisecond),
			four.Seconds()/one.Seconds(), float64(sent)/float64(size))
	}
}

// benchSwarm starts n storage members and a client member with o, and
// returns the client once everyone is connected.
func benchSwarm(b *testing.B, n int, o harness.SwarmOptions) *harness.Node {
	b.Helper()
	var nodes []*harness.Node
	for i := range n + 1 {
		o := harness.Options{Args: replArgs}
		if up := os.Getenv("ANNEX_SWARM_BENCH_UPLOAD"); up != "" {
			o.Config = "[limits]\nupload = \"" + up + "\"\n"
		}
		nodes = append(nodes, harness.NewNode(b, bin, "n"+strconv.Itoa(i), o))
	}
	c := harness.Of(bin, nodes...)
	o.Roles = map[int]string{n: "client"}
	c.FormSwarm(b, o)
	laptop := nodes[n]

	harness.WaitFor(b, time.Minute, "the client connected to every storage member", func() bool {
		for _, s := range nodes[:n] {
			if !connectedTo(laptop, s.PeerID) {
				return false
			}
		}
		return true
	})
	return laptop
}

func benchPut(b *testing.B, n *harness.Node, path string) string {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r, err := n.Client().Put(ctx, client.PutRequest{Path: path}, nil)
	if err != nil {
		b.Fatalf("put: %v\n%s", err, n.LogTail(30))
	}
	return r.CID
}
