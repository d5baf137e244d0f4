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
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkErasureGetFourCapped: a get of a coded content (4+2) from four
// holders whose upload is capped at 16 MiB/s each ([limits] upload), on a
// client member that never held it (issue 12: ≥ 90 % of 64 MiB/s). Six
// storage members take the put from an unlimited client; then the
// uploader stops and the two parity holders are killed, so the getter has
// exactly the four data holders. It reports the rate over the whole get
// (asking the holders included) and over the transfer (first byte to
// last), against the cap and against the same-run baseline: the rules
// switched to erasure = none, copies = 4, a replicated content of the
// same size put on the same four capped holders and got the same way.
// The file is 256 MiB, or ANNEX_SWARM_BENCH_MIB MiB.
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
		coded := timedGet(b, desktop, root, filepath.Join(dir, "out"+strconv.Itoa(i)), sum)
		b.StopTimer()

		// The same-run baseline: a replicated content of the same size,
		// a whole copy on each of the same four capped holders.
		cs.c.MustRun(b, "rules", "set", cs.s.Rules, "--key", cs.s.Key, "erasure=none", "copies=4", "copies_min=4")
		var live []*harness.Node
		for _, n := range cs.storage {
			if n.Running() {
				live = append(live, n)
			}
		}
		live[0].MustCLI("rules", "push", cs.s.Rules)
		if err := laptop.Start(); err != nil {
			b.Fatal(err)
		}
		want := swarmVersion(live[0])
		harness.WaitFor(b, 2*time.Minute, "the replicated rules on the live members, the laptop connected", func() bool {
			for _, n := range append([]*harness.Node{laptop, desktop}, live...) {
				if swarmVersion(n) != want {
					return false
				}
			}
			for _, n := range live {
				if !connectedTo(laptop, n.PeerID) {
					return false
				}
			}
			return true
		})
		srcR := filepath.Join(dir, "repl"+strconv.Itoa(i))
		sumR := writeRandomFile(b, srcR, size, uint64(90+i))
		rootR := benchPut(b, laptop, srcR)
		if err := laptop.Stop(); err != nil {
			b.Fatal(err)
		}
		repl := timedGet(b, desktop, rootR, filepath.Join(dir, "outR"+strconv.Itoa(i)), sumR)

		mib := float64(size) / (1 << 20)
		b.ReportMetric(mib/coded.whole.Seconds(), "MiB/s")
		b.ReportMetric(mib/coded.transfer.Seconds(), "MiB/s-transfer")
		b.ReportMetric(mib/repl.whole.Seconds(), "MiB/s-replicated")
		b.Logf("%d MiB from 4 holders at %d MiB/s each (cap %d MiB/s): coded get %v = %.1f MiB/s (%.2f × the cap), first byte to last %.1f MiB/s; replicated get from the same 4 holders %v = %.1f MiB/s (%.2f × the cap); coded / replicated = %.2f; coded sources %v",
			size>>20, capMiB, 4*capMiB,
			coded.whole.Round(10*time.Millisecond), mib/coded.whole.Seconds(), mib/coded.whole.Seconds()/(4*capMiB), mib/coded.transfer.Seconds(),
			repl.whole.Round(10*time.Millisecond), mib/repl.whole.Seconds(), mib/repl.whole.Seconds()/(4*capMiB),
			repl.whole.Seconds()/coded.whole.Seconds(), coded.sources)
		b.StartTimer()
	}
}

// getTiming is how long a get took: in all, and from its first byte.
type getTiming struct {
	whole, transfer time.Duration
	sources         map[string]int64
}

// timedGet gets root on n into out, checks it against sum and times it.
func timedGet(b *testing.B, n *harness.Node, root, out string, sum [32]byte) getTiming {
	b.Helper()
	var mu sync.Mutex
	var first time.Time
	var g getTiming
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	_, err := n.Client().Get(ctx, client.GetRequest{CID: root, Path: out}, func(p client.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if first.IsZero() && p.Bytes > 0 {
			first = time.Now()
		}
		if p.Sources != nil {
			g.sources = p.Sources
		}
	})
	end := time.Now()
	if err != nil {
		b.Fatalf("get: %v\n%s", err, n.LogTail(40))
	}
	if fileSHA256(b, out) != sum {
		b.Fatal("the file got back differs")
	}
	mu.Lock()
	defer mu.Unlock()
	g.whole, g.transfer = end.Sub(start), end.Sub(first)
	return g
}
