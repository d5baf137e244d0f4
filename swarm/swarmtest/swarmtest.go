// Package swarmtest holds the helpers the swarm packages' tests share: real
// libp2p hosts on loopback that admit each other, random content, and the
// one wait-on-a-condition helper. It is imported by tests only.
package swarmtest

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/annex-swarm/annex-swarm/swarm/membership"
)

// Member is one host started by Hosts, with its gater.
type Member struct {
	Host  host.Host
	Gater *membership.Gater
}

// Hosts starts n libp2p hosts on loopback TCP that admit each other and
// know each other's addresses; they are not connected (use Connect). They
// are closed by t.Cleanup.
func Hosts(t testing.TB, n int) []Member {
	t.Helper()
	out := make([]Member, n)
	for i := range out {
		key, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		g := membership.NewGater()
		h, err := membership.NewHost(key, []string{"/ip4/127.0.0.1/tcp/0"}, g)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		out[i] = Member{Host: h, Gater: g}
	}
	ids := make([]peer.ID, n)
	for i, m := range out {
		ids[i] = m.Host.ID()
	}
	for _, m := range out {
		m.Gater.SetMembers(ids)
		for _, o := range out {
			if o.Host != m.Host {
				m.Host.Peerstore().AddAddrs(o.Host.ID(), o.Host.Addrs(), peerstore.PermanentAddrTTL)
			}
		}
	}
	return out
}

// Connect connects h to each of others.
func Connect(t testing.TB, h host.Host, others ...host.Host) {
	t.Helper()
	for _, o := range others {
		if err := h.Connect(context.Background(), peer.AddrInfo{ID: o.ID(), Addrs: o.Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
}

// RandomContent returns n random bytes.
func RandomContent(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// WaitFor polls cond until it holds, failing t when d passes first.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
