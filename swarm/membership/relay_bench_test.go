package membership

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	relayv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/relay"
	ma "github.com/multiformats/go-multiaddr"
)

const benchSink = "/annex-swarm/test/sink"

// BenchmarkRelayedStream measures one stream of bulk bytes through a
// member's relay with no limits (what a "bulk over relay" rule would
// allow) beside the same stream over a direct connection, on loopback,
// in one run (docs/NAT.md "Bulk data over a relay"):
//
//	go test -run '^$' -bench RelayedStream -benchtime 64x ./swarm/membership/
func BenchmarkRelayedStream(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, rg, _ := natHostTB(b)
	m, mg, _ := natHostTB(b)
	s, sg, _ := natHostTB(b)
	rg.SetMembers([]peer.ID{m.ID(), s.ID()})
	mg.SetMembers([]peer.ID{r.ID(), s.ID()})
	sg.SetMembers([]peer.ID{r.ID(), m.ID()})
	var st RelayStats
	rel, err := relayv2.New(r, relayv2.WithInfiniteLimits(), relayv2.WithMetricsTracer(&relayTracer{s: &st}))
	if err != nil {
		b.Fatal(err)
	}
	defer rel.Close()
	m.SetStreamHandler(benchSink, func(st network.Stream) {
		_, _ = io.Copy(io.Discard, st)
		_ = st.Close()
	})
	rinfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	if _, err := client.Reserve(ctx, m, rinfo); err != nil {
		b.Fatal(err)
	}
	if err := s.Connect(ctx, rinfo); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	send := func(b *testing.B, ctx context.Context) {
		for range b.N {
			st, err := s.NewStream(ctx, m.ID(), benchSink)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := st.Write(buf); err != nil {
				b.Fatal(err)
			}
			_ = st.CloseWrite()
			_, _ = io.Copy(io.Discard, st)
			_ = st.Close()
		}
	}
	b.Run("relayed", func(b *testing.B) {
		circuit := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
		lctx := network.WithAllowLimitedConn(ctx, "bench")
		if err := s.Connect(lctx, peer.AddrInfo{ID: m.ID(), Addrs: []ma.Multiaddr{circuit}}); err != nil {
			b.Fatal(err)
		}
		before := st.BytesRelayed.Load()
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		send(b, lctx)
		b.StopTimer()
		b.ReportMetric(float64(st.BytesRelayed.Load()-before)/float64(b.N), "relayed-B/op")
	})
	b.Run("direct", func(b *testing.B) {
		if err := s.Connect(ctx, peer.AddrInfo{ID: m.ID(), Addrs: m.Addrs()}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(buf)))
		b.ResetTimer()
		send(b, ctx)
	})
}
