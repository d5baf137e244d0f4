package netns_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkNATGet measures a 256 MiB get between two members behind
// different NATs (over the hole-punched connection) beside the same get
// between two public members, in one run of one swarm (docs/PERFORMANCE.md):
//
//	go test -run '^$' -bench NATGet -benchtime 1x ./test/netns/
//
// Every member is storage with copies 1, so a put stays on its uploader
// and the get fetches every byte from it.
func BenchmarkNATGet(b *testing.B) {
	nl := newNATLab(b)
	pub := nl.node(b, "pub", "pub")
	pub2 := nl.node(b, "pub2", "pub2")
	na := nl.node(b, "a", "a")
	nb := nl.node(b, "b", "b")
	c := harness.Of(bin, pub, pub2, na, nb)
	dir := b.TempDir()
	s := &harness.Swarm{Dir: dir, Key: filepath.Join(dir, "admin.key"), Rules: filepath.Join(dir, "swarm.rules")}
	c.MustRun(b, "key", "generate", "--name", "admin", "-o", s.Key)
	c.MustRun(b, "swarm", "create", "--name", "bench", "--key", s.Key, "--copies", "1", "--copies-min", "1", "-o", s.Rules)
	c.AddMember(b, s, pub, "storage", publicAddrs(pubIP)...)
	c.AddMember(b, s, pub2, "storage", publicAddrs(pub2IP)...)
	c.AddMember(b, s, na, "storage")
	c.AddMember(b, s, nb, "storage")
	for _, n := range c.Nodes {
		n.MustCLI("join", s.Rules)
	}
	harness.WaitFor(b, 90*time.Second, "a hole-punched connection between a and b", func() bool {
		return member(nb.StatusJSON(), na.PeerID).Connection == "hole-punched"
	})
	harness.WaitFor(b, 30*time.Second, "pub connected to pub2", func() bool {
		return member(pub.StatusJSON(), pub2.PeerID).Connection == "direct"
	})

	const size = 256 << 20
	seed := uint64(1)
	for _, pair := range []struct {
		name     string
		from, to *harness.Node
	}{{"public", pub2, pub}, {"hole-punched", na, nb}} {
		b.Run(pair.name, func(b *testing.B) {
			b.SetBytes(size)
			for range b.N {
				b.StopTimer()
				seed++
				f := filepath.Join(dir, fmt.Sprintf("in-%d.bin", seed))
				writeRandom(b, f, size, seed)
				cid := harness.LastLine(pair.from.MustCLI("put", f))
				relayed := pub.StatusJSON().Relay.BytesRelayed
				out := filepath.Join(dir, fmt.Sprintf("out-%d.bin", seed))
				b.StartTimer()
				pair.to.MustCLI("get", cid, "-o", out)
				b.StopTimer()
				if st, err := os.Stat(out); err != nil || st.Size() != size {
					b.Fatalf("get wrote %v, %v", st, err)
				}
				b.ReportMetric(float64(pub.StatusJSON().Relay.BytesRelayed-relayed), "relayed-B/op")
				os.Remove(f)
				os.Remove(out)
				b.StartTimer()
			}
		})
	}
}

// writeRandom writes size pseudo-random bytes (seeded) to path.
func writeRandom(tb testing.TB, path string, size int64, seed uint64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if _, err := io.CopyN(f, rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}), size); err != nil {
		tb.Fatal(err)
	}
}
