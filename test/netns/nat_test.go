package netns_test

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
	"github.com/annex-swarm/annex-swarm/test/netns"
)

// The NAT lab: an "internet" namespace (wan) holding bridge br0 on
// 11.0.0.0/24, public hosts on it, and two home routers: nata (11.0.0.1)
// masquerading LAN 192.168.1.0/24 (a bridge: the member a at .2, a
// stranger at .3), natb (11.0.0.2) masquerading 192.168.2.0/24 (member b).
// The 11/8 addresses count as public for libp2p, and no namespace is
// connected to the machine's own network.
const (
	pubIP  = "11.0.0.10"
	pub2IP = "11.0.0.11"
	port   = "4101"
)

type natLab struct {
	lab *netns.Lab
}

func newNATLab(t testing.TB) *natLab { return buildNATLab(t, false) }

// buildNATLab builds the lab; with symmetricB natb picks a random port for
// every flow.
func buildNATLab(t testing.TB, symmetricB bool) *natLab {
	l := netns.New(t)
	for _, ns := range []string{"wan", "pub", "pub2", "nata", "natb", "a", "b", "s"} {
		l.NS(ns)
	}
	l.Bridge("wan", "br0", "")
	l.Plug("pub", "eth0", pubIP+"/24", "wan", "br0")
	l.Plug("pub2", "eth0", pub2IP+"/24", "wan", "br0")
	l.Plug("nata", "wan0", "11.0.0.1/24", "wan", "br0")
	l.Plug("natb", "wan0", "11.0.0.2/24", "wan", "br0")

	l.Bridge("nata", "lan0", "192.168.1.1/24")
	l.Plug("a", "eth0", "192.168.1.2/24", "nata", "lan0")
	l.Plug("s", "eth0", "192.168.1.3/24", "nata", "lan0")
	l.Route("a", "192.168.1.1")
	l.Route("s", "192.168.1.1")
	l.NAT("nata", "wan0")

	l.Link("natb", "lan0", "192.168.2.1/24", "b", "eth0", "192.168.2.2/24")
	l.Route("b", "192.168.2.1")
	if symmetricB {
		l.SymmetricNAT("natb", "wan0")
	} else {
		l.NAT("natb", "wan0")
	}
	return &natLab{lab: l}
}

// node starts a daemon in namespace ns listening on port 4101 of all its
// addresses (TCP and QUIC).
func (nl *natLab) node(t testing.TB, name, ns string, args ...string) *harness.Node {
	n := nl.start(t, name, ns, args...)
	t.Cleanup(func() {
		if t.Failed() {
			r := n.CLI("status", "--json")
			t.Logf("%s status: %s\n%s log:\n%s", name, r.Stdout, name, n.LogTail(60))
		}
	})
	return n
}

func (nl *natLab) start(t testing.TB, name, ns string, args ...string) *harness.Node {
	return harness.NewNodeIn(t, bin, name, nl.lab.Name(ns), harness.Options{Args: append([]string{
		"--listen", "/ip4/0.0.0.0/tcp/" + port, "--listen", "/ip4/0.0.0.0/udp/" + port + "/quic-v1",
		"--sync-interval", "2s",
	}, args...)})
}

func publicAddrs(ip string) []string {
	return []string{"--addr", "/ip4/" + ip + "/tcp/" + port, "--addr", "/ip4/" + ip + "/udp/" + port + "/quic-v1"}
}

// natSwarm forms a swarm of pub (a client with public addresses: the relay)
// and the storage members listed without addresses, copies 1, and has
// every node join.
func natSwarm(t *testing.T, c *harness.Cluster, pub *harness.Node, others map[*harness.Node][]string) *harness.Swarm {
	dir := t.TempDir()
	s := &harness.Swarm{Dir: dir, Key: filepath.Join(dir, "admin.key"), Rules: filepath.Join(dir, "swarm.rules")}
	c.MustRun(t, "key", "generate", "--name", "admin", "-o", s.Key)
	c.MustRun(t, "swarm", "create", "--name", "nat", "--key", s.Key, "--copies", "1", "--copies-min", "1", "-o", s.Rules)
	c.AddMember(t, s, pub, "client", publicAddrs(pubIP)...)
	for n, extra := range others {
		c.AddMember(t, s, n, "storage", extra...)
	}
	for _, n := range c.Nodes {
		n.MustCLI("join", s.Rules)
	}
	return s
}

func member(st client.Status, peerID string) client.MemberStatus {
	for _, m := range st.Members {
		if m.PeerID == peerID {
			return m
		}
	}
	return client.MemberStatus{}
}

// TestNATHolePunch: two members behind different NATs find each other
// through the public member's relay, punch a hole, and move content over
// the direct connection; the relay carries only signalling.
func TestNATHolePunch(t *testing.T) {
	nl := newNATLab(t)
	pub := nl.node(t, "pub", "pub")
	a := nl.node(t, "a", "a")
	b := nl.node(t, "b", "b")
	c := harness.Of(bin, pub, a, b)
	natSwarm(t, c, pub, map[*harness.Node][]string{a: nil, b: nil})

	harness.WaitFor(t, 60*time.Second, "reachability: pub public, a and b private", func() bool {
		return pub.StatusJSON().Reachability == "public" &&
			a.StatusJSON().Reachability == "private" && b.StatusJSON().Reachability == "private"
	})
	var last client.MemberStatus
	harness.WaitFor(t, 90*time.Second, "a hole-punched connection between a and b", func() bool {
		last = member(b.StatusJSON(), a.PeerID)
		return last.Connection == "hole-punched"
	})
	if m := member(a.StatusJSON(), b.PeerID); m.Connection != "hole-punched" {
		t.Errorf("a sees b as %q (hole punch: %q), want hole-punched", m.Connection, m.HolePunch)
	}
	if m := member(a.StatusJSON(), pub.PeerID); m.Connection != "direct" {
		t.Errorf("a sees pub as %q, want direct", m.Connection)
	}
	before := pub.StatusJSON().Relay
	if before == nil || before.Reservations == 0 {
		t.Fatalf("pub runs no relay or granted no reservation: %+v", before)
	}

	const size = 8 << 20
	dir := t.TempDir()
	cids := map[*harness.Node]string{}
	data := map[*harness.Node][]byte{}
	for _, n := range []*harness.Node{a, b} {
		data[n] = make([]byte, size)
		_, _ = rand.Read(data[n])
		f := filepath.Join(dir, n.Name+".bin")
		if err := os.WriteFile(f, data[n], 0o600); err != nil {
			t.Fatal(err)
		}
		cids[n] = harness.LastLine(n.MustCLI("put", f))
	}
	for _, pair := range [][2]*harness.Node{{a, b}, {b, a}} {
		from, to := pair[0], pair[1]
		out := filepath.Join(dir, to.Name+"-got-"+from.Name)
		to.MustCLI("get", cids[from], "-o", out)
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data[from]) {
			t.Fatalf("%s got %s's content wrong (%d bytes)", to.Name, from.Name, len(got))
		}
	}
	if st := b.StatusJSON(); st.BytesReceived < size {
		t.Errorf("b received %d chunk bytes, want at least %d", st.BytesReceived, size)
	}
	after := pub.StatusJSON().Relay
	relayed := after.BytesRelayed - before.BytesRelayed
	t.Logf("relay: %d bytes relayed during two %d-byte gets (%d in all, %d circuits)", relayed, size, after.BytesRelayed, after.Circuits)
	if relayed > 256<<10 {
		t.Errorf("the relay carried %d bytes during the gets; bulk data went through it", relayed)
	}
	if m := member(b.StatusJSON(), a.PeerID); m.Connection != "hole-punched" {
		t.Errorf("after the gets b sees a as %q", m.Connection)
	}
}

// TestNATStranger: a host behind the same NAT as a member, not in the
// swarm, cannot connect to the relay, so it cannot reserve a slot nor be
// relayed; the members' relay counters do not move for it.
func TestNATStranger(t *testing.T) {
	nl := newNATLab(t)
	pub := nl.node(t, "pub", "pub")
	a := nl.node(t, "a", "a")
	c := harness.Of(bin, pub, a)
	natSwarm(t, c, pub, map[*harness.Node][]string{a: nil})
	harness.WaitFor(t, 60*time.Second, "a's reservation on pub", func() bool {
		r := pub.StatusJSON().Relay
		return r != nil && r.Reservations > 0
	})
	refusedBefore := pub.StatusJSON().RefusedConnections

	// The stranger believes in a swarm of its own that lists pub as a
	// public member, so it dials pub and asks it for a reservation.
	s := nl.node(t, "stranger", "s")
	own := harness.Of(bin, s)
	dir := t.TempDir()
	sw := &harness.Swarm{Dir: dir, Key: filepath.Join(dir, "k"), Rules: filepath.Join(dir, "r")}
	own.MustRun(t, "key", "generate", "--name", "x", "-o", sw.Key)
	own.MustRun(t, "swarm", "create", "--name", "other", "--key", sw.Key, "-o", sw.Rules)
	own.AddMember(t, sw, s, "storage")
	own.AddMember(t, sw, pub, "storage", publicAddrs(pubIP)...)
	s.MustCLI("join", sw.Rules)

	harness.WaitFor(t, 60*time.Second, "pub refusing the stranger's connections", func() bool {
		return pub.StatusJSON().RefusedConnections > refusedBefore
	})
	// The stranger's side may count a connection as made for the moment
	// between its own handshake and pub's gate closing it (seen in CI on
	// 2026-12-02); a gate that let it stay would keep it connected.
	harness.WaitFor(t, 15*time.Second, "the stranger without a lasting connection to pub", func() bool {
		m := member(s.StatusJSON(), pub.PeerID)
		return !m.Connected && m.Connection == ""
	})
	r := pub.StatusJSON().Relay
	if r.Circuits != 0 {
		t.Errorf("pub relayed %d circuits; only a is in the swarm and nobody dialed it", r.Circuits)
	}
	for _, m := range pub.StatusJSON().Members {
		if m.PeerID == s.PeerID {
			t.Errorf("the stranger appears among pub's members")
		}
	}
}

// TestNATPunchFails: behind a symmetric NAT hole punching cannot work; the
// members stay on the relayed connection and status says the punch failed
// and why.
func TestNATPunchFails(t *testing.T) {
	nl := buildNATLab(t, true)
	pub := nl.node(t, "pub", "pub")
	a := nl.node(t, "a", "a")
	b := nl.node(t, "b", "b")
	c := harness.Of(bin, pub, a, b)
	natSwarm(t, c, pub, map[*harness.Node][]string{a: nil, b: nil})
	var m client.MemberStatus
	harness.WaitFor(t, 90*time.Second, "a failed hole punch reported by b", func() bool {
		m = member(b.StatusJSON(), a.PeerID)
		return m.HolePunch != ""
	})
	t.Logf("b sees a: connection %q, %s", m.Connection, m.HolePunch)
	if m.Connection != "relayed" {
		t.Errorf("b sees a as %q, want relayed", m.Connection)
	}
}
