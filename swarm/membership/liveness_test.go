package membership_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// A connected member is alive by its answered pings, which keep coming
// while it stays; once it is gone it is not alive, and since says when it
// was last seen.
func TestAliveByPing(t *testing.T) {
	hs := swarmtest.Hosts(t, 2)
	signed := signedDefinition(t, "liveness", hs, true)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var ms []*membership.Membership
	for _, h := range hs {
		ms = append(ms, membership.New(h.Host, h.Gater, membership.Options{Logger: slog.New(slog.DiscardHandler), PingInterval: 50 * time.Millisecond}))
	}
	a, b := ms[0], hs[1].Host.ID()
	// Checked before joining: a join starts the DHT, whose bootstrap may
	// connect the two at once.
	if alive, since := a.Alive(b); alive || !since.IsZero() {
		t.Fatalf("a member never seen: alive %v since %v", alive, since)
	}
	for _, m := range ms {
		if _, err := m.Join(ctx, signed); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range ms {
		wg.Go(func() { m.Run(ctx) })
	}
	swarmtest.WaitFor(t, 20*time.Second, "the member alive", func() bool {
		alive, _ := a.Alive(b)
		return alive
	})
	_, first := a.Alive(b)
	swarmtest.WaitFor(t, 20*time.Second, "a later answered ping", func() bool {
		alive, since := a.Alive(b)
		return alive && since.After(first)
	})

	if err := hs[1].Host.Close(); err != nil {
		t.Fatal(err)
	}
	swarmtest.WaitFor(t, 20*time.Second, "the closed member not alive", func() bool {
		alive, _ := a.Alive(b)
		return !alive
	})
	if _, since := a.Alive(b); since.IsZero() || time.Since(since) > 20*time.Second {
		t.Fatalf("gone member last seen at %v", since)
	}
}

// signedDefinition signs a definition named name whose storage members
// are hs, with their addresses when addrs is set.
func signedDefinition(t *testing.T, name string, hs []swarmtest.Member, addrs bool) []byte {
	_, signed := newDefinition(t, name, hs, addrs)
	return signed
}

// newDefinition signs version 1 of a swarm whose storage members are hs
// and returns its admin's signer with the document.
func newDefinition(t *testing.T, name string, hs []swarmtest.Member, addrs bool) (*rules.Signer, []byte) {
	t.Helper()
	armored, err := rules.GenerateKey("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := rules.ReadSigner(bytes.NewReader(armored), nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := rules.Create(name, signer, rules.DefaultReplication, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		m := rules.Member{Name: string(rune('a' + i)), Peer: rules.PeerID(h.Host.ID()), Role: rules.RoleStorage}
		if addrs {
			m.Addrs = h.Host.Addrs()
		}
		if err := def.AddMember(m); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := signer.Sign(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	return signer, signed
}
