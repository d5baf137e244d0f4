package membership_test

import (
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"

	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// freezer is a TCP proxy on loopback whose connections can be frozen:
// they stay open and carry nothing, as a connection to a process that was
// replaced (same peer ID, same address) looks to the other side until the
// transport gives up on it.
type freezer struct {
	ln     net.Listener
	frozen atomic.Bool
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  []net.Conn
}

func newFreezer(t *testing.T, target string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			d, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, d)
			f.mu.Unlock()
			// Once frozen, nothing is delivered and nothing is closed:
			// the far side may go away, this side never hears of it.
			pipe := func(dst, src net.Conn) {
				buf := make([]byte, 32<<10)
				for {
					n, err := src.Read(buf)
					if f.frozen.Load() {
						if err == nil {
							continue
						}
						return
					}
					if err != nil {
						dst.Close()
						return
					}
					if _, err := dst.Write(buf[:n]); err != nil {
						return
					}
				}
			}
			f.wg.Go(func() { pipe(d, c) })
			f.wg.Go(func() { pipe(c, d) })
		}
	})
	return f
}

// A member with two connections to another, one of which leads nowhere
// any more (and, holding stuck streams, is the one new streams prefer),
// closes that one once a ping on it fails: streams to the member work
// again within a few ping intervals instead of waiting for the
// transport's idle timeout.
func TestPingClosesADeadConnection(t *testing.T) {
	hs := swarmtest.Hosts(t, 2)
	// No addresses in the definition: the members dial nothing by
	// themselves; the test makes the connections.
	signed := signedDefinition(t, "deadconn", hs, false)
	a, b := hs[0].Host, hs[1].Host
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The first connection goes through the proxy. Then the proxy
	// freezes and b is replaced by a new host with the same key (a
	// restart): a sees the old connection open and gets a new one from b.
	var target string
	for _, addr := range b.Addrs() {
		if na, err := manet.ToNetAddr(addr); err == nil {
			target = na.String()
			break
		}
	}
	fz := newFreezer(t, target)
	proxied, err := manet.FromNetAddr(fz.ln.Addr())
	if err != nil {
		t.Fatal(err)
	}
	// Only the proxy's address: swarmtest.Hosts told each host the
	// other's addresses.
	a.Peerstore().ClearAddrs(b.ID())
	b.Peerstore().ClearAddrs(a.ID())
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: []ma.Multiaddr{proxied}}); err != nil {
		t.Fatal(err)
	}
	dead := a.Network().ConnsToPeer(b.ID())[0]
	fz.frozen.Store(true)
	key := b.Peerstore().PrivKey(b.ID())
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}

	g := membership.NewGater()
	g.SetMembers([]peer.ID{a.ID(), b.ID()})
	b2, err := membership.NewHost(key, []string{"/ip4/127.0.0.1/tcp/0"}, g)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	hs[1].Host, hs[1].Gater = b2, g
	if err := b2.Connect(ctx, peer.AddrInfo{ID: a.ID(), Addrs: a.Addrs()}); err != nil {
		t.Fatal(err)
	}
	if n := len(a.Network().ConnsToPeer(b.ID())); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	// Streams stuck on the dead connection make it the preferred one.
	for range 3 {
		if _, err := dead.NewStream(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	mctx, stop := context.WithCancel(context.Background())
	defer stop()
	for _, h := range hs {
		m := membership.New(h.Host, h.Gater, membership.Options{Logger: slog.New(slog.DiscardHandler), PingInterval: 100 * time.Millisecond})
		if _, err := m.Join(mctx, signed); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { m.Run(mctx) })
	}
	swarmtest.WaitFor(t, 10*time.Second, "the dead connection closed", func() bool {
		return dead.IsClosed()
	})
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	if res := <-ping.Ping(pctx, a, b2.ID()); res.Error != nil {
		t.Fatalf("a ping over the remaining connection: %v", res.Error)
	}
}
