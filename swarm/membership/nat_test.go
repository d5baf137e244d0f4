package membership

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/client"
	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
	ma "github.com/multiformats/go-multiaddr"
)

func natHost(t *testing.T) (host.Host, *Gater, *NAT) { return natHostTB(t) }

func natHostTB(t testing.TB) (host.Host, *Gater, *NAT) {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	g := NewGater()
	n := NewNAT(g, nil)
	h, err := NewHostNAT(key, []string{"/ip4/127.0.0.1/tcp/0"}, g, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(); h.Close() })
	return h, g, n
}

// TestRelayOnlyForMembers: the relay's ACL refuses a reservation and a
// circuit to a peer that is no longer a member, even over a connection the
// gater admitted while it was one; a member reserves and is relayed.
func TestRelayOnlyForMembers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, rg, rn := natHost(t)
	m, mg, _ := natHost(t)
	s, sg, _ := natHost(t)
	rg.SetMembers([]peer.ID{m.ID(), s.ID()})
	mg.SetMembers([]peer.ID{r.ID(), s.ID()})
	sg.SetMembers([]peer.ID{r.ID(), m.ID()})
	if err := rn.setRelayService(true); err != nil {
		t.Fatal(err)
	}
	rinfo := peer.AddrInfo{ID: r.ID(), Addrs: r.Addrs()}
	if err := s.Connect(ctx, rinfo); err != nil {
		t.Fatal(err)
	}
	rg.SetMembers([]peer.ID{m.ID()}) // s removed; its connection stays open

	_, err := client.Reserve(ctx, s, rinfo)
	var re client.ReservationError
	if !errors.As(err, &re) || re.Status != pbv2.Status_PERMISSION_DENIED {
		t.Fatalf("a non-member's reservation: %v, want PERMISSION_DENIED", err)
	}
	if _, err := client.Reserve(ctx, m, rinfo); err != nil {
		t.Fatalf("a member's reservation: %v", err)
	}
	circuit := ma.StringCast("/p2p/" + r.ID().String() + "/p2p-circuit")
	err = s.Connect(network.WithAllowLimitedConn(ctx, "test"), peer.AddrInfo{ID: m.ID(), Addrs: []ma.Multiaddr{circuit}})
	if err == nil {
		t.Fatal("a non-member was relayed to a member")
	}
	// The relay counts a request after it has answered it: the answer can
	// reach the client first, so the counters are waited for (bounded).
	st := rn.Stats()
	counted := func() bool { return st.ReservationsRefused.Load() >= 1 && st.CircuitsRefused.Load() >= 1 }
	for deadline := time.Now().Add(5 * time.Second); !counted() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !counted() || st.Reservations.Load() != 1 {
		t.Errorf("relay counters: granted %d, refused %d, circuits refused %d",
			st.Reservations.Load(), st.ReservationsRefused.Load(), st.CircuitsRefused.Load())
	}
}

// TestReachCheck: a member dialed back on its listen port is public to
// the member that checked; a port nobody listens on is not reached.
func TestReachCheck(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, ag, an := natHost(t)
	b, bg, _ := natHost(t)
	ag.SetMembers([]peer.ID{b.ID()})
	bg.SetMembers([]peer.ID{a.ID()})
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	// Loopback listen ports are left out of a real check; ask for this
	// one explicitly.
	var p uint16
	for _, la := range a.Network().ListenAddresses() {
		if v, err := la.ValueForProtocol(ma.P_TCP); err == nil {
			n, _ := strconv.ParseUint(v, 10, 16)
			p = uint16(n)
		}
	}
	if p == 0 {
		t.Fatalf("no TCP listen address in %v", a.Network().ListenAddresses())
	}
	ok, err := an.askReach(ctx, b.ID(), []uint16{p})
	if err != nil || !ok {
		t.Fatalf("check of a listening port: %v, %v", ok, err)
	}
	ok, err = an.askReach(ctx, b.ID(), []uint16{1})
	if err != nil || ok {
		t.Fatalf("check of port 1: %v, %v", ok, err)
	}
}

func FuzzReadPorts(f *testing.F) {
	f.Add(EncodePorts([]uint16{4101, 443}))
	f.Add([]byte{9, 0, 1})
	f.Add([]byte{1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		ports, err := ReadPorts(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := ReadPorts(bytes.NewReader(EncodePorts(ports)))
		if err != nil || !slices.Equal(again, ports) {
			t.Fatalf("round trip of %v: %v, %v", ports, again, err)
		}
	})
}
