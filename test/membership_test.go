package test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// fastSync makes members reconnect and compare versions every second.
var fastSync = harness.Options{Args: []string{"--sync-interval", "1s"}}

func swarmVersion(n *harness.Node) uint64 {
	st, err := n.Client().Status(context.Background())
	if err != nil || st.Swarm == nil {
		return 0
	}
	return st.Swarm.Version
}

func connectedTo(n *harness.Node, peerID string) bool {
	st, err := n.Client().Status(context.Background())
	if err != nil {
		return false
	}
	for _, m := range st.Members {
		if m.PeerID == peerID {
			return m.Connected
		}
	}
	return false
}

func TestMembershipSpreadRemoveRefuse(t *testing.T) {
	c := harness.New(t, bin, 4, fastSync)
	s := c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 1})
	base := swarmVersion(c.Nodes[0])
	if base == 0 {
		t.Fatal("node0 has no swarm after join")
	}
	harness.WaitFor(t, 30*time.Second, "all members connected", func() bool {
		for _, n := range c.Nodes[1:] {
			if !connectedTo(c.Nodes[0], n.PeerID) {
				return false
			}
		}
		return true
	})

	// A new version pushed to one member is adopted by all.
	c.MustRun(t, "rules", "set", s.Rules, "--key", s.Key, "copies=3")
	start := time.Now()
	c.Nodes[0].MustCLI("rules", "push", s.Rules)
	harness.WaitFor(t, 30*time.Second, "version spread to 4 members", func() bool {
		for _, n := range c.Nodes {
			if swarmVersion(n) != base+1 {
				return false
			}
		}
		return true
	})
	t.Logf("version %d reached 4 members in %v", base+1, time.Since(start))

	// A member removed in a new version is disconnected.
	victim := c.Nodes[3]
	stale, err := os.ReadFile(filepath.Join(victim.Home, "swarm.rules"))
	if err != nil {
		t.Fatal(err)
	}
	c.MustRun(t, "member", "remove", s.Rules, "--key", s.Key, "--peer", victim.PeerID)
	c.Nodes[1].MustCLI("rules", "push", s.Rules)
	harness.WaitFor(t, 30*time.Second, "removed member disconnected", func() bool {
		for _, n := range c.Nodes[:3] {
			if swarmVersion(n) != base+2 {
				return false
			}
		}
		st := victim.StatusJSON()
		return st.ConnectedPeers == 0
	})

	// ... and refused from then on, even with its old definition in hand.
	victim.Stop()
	if err := os.WriteFile(filepath.Join(victim.Home, "swarm.rules"), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	refusedBefore := c.Nodes[0].StatusJSON().RefusedConnections
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "removed member refused by node0", func() bool {
		return c.Nodes[0].StatusJSON().RefusedConnections > refusedBefore
	})
	// Had any member admitted it, the rules exchange would have handed it
	// the newer version at once; its dial attempts only ever end refused.
	if v := swarmVersion(victim); v != base+1 {
		t.Errorf("removed member got version %d; it should be stuck at %d", v, base+1)
	}
	harness.WaitFor(t, 10*time.Second, "removed member without connections", func() bool {
		return victim.StatusJSON().ConnectedPeers == 0
	})

	// A member that was offline gets the newest version when it returns.
	c.Nodes[2].Stop()
	c.MustRun(t, "rules", "set", s.Rules, "--key", s.Key, "copies_min=2")
	c.Nodes[0].MustCLI("rules", "push", s.Rules)
	if err := c.Nodes[2].Start(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "returning member catches up", func() bool {
		return swarmVersion(c.Nodes[2]) == base+3
	})
}

func TestStrangerCannotConnectOrQueryDHT(t *testing.T) {
	c := harness.New(t, bin, 2, fastSync)
	s := c.FormSwarm(t, harness.SwarmOptions{})
	_ = s
	target := c.Nodes[0]
	info := peer.AddrInfo{ID: peer.ID("")}
	pid, err := peer.Decode(target.PeerID)
	if err != nil {
		t.Fatal(err)
	}
	info.ID = pid
	for _, a := range target.Addrs {
		info.Addrs = append(info.Addrs, ma.StringCast(a))
	}
	stranger, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	before := target.StatusJSON().RefusedConnections

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := swarmStatus(t, target)
	dhtProto := protocol.ID("/annex-swarm/" + st + "/kad/1.0.0")
	if err := stranger.Connect(ctx, info); err == nil {
		// The handshake may complete from the dialer's side before the gater
		// closes it; no protocol must run on it.
		if _, err := stranger.NewStream(ctx, pid, dhtProto); err == nil {
			t.Fatal("stranger opened a DHT stream to a member")
		}
	}
	harness.WaitFor(t, 10*time.Second, "stranger counted as refused", func() bool {
		return target.StatusJSON().RefusedConnections > before
	})
	if connectedTo(target, stranger.ID().String()) {
		t.Error("stranger listed as connected")
	}
	if out := target.MustCLI("status"); strings.Contains(out, stranger.ID().String()) {
		t.Errorf("stranger appears in status:\n%s", out)
	}
}

func swarmStatus(t *testing.T, n *harness.Node) string {
	t.Helper()
	st := n.StatusJSON()
	if st.Swarm == nil {
		t.Fatal("no swarm")
	}
	return st.Swarm.ID
}

func TestEffectiveLimitsAndLeave(t *testing.T) {
	c := harness.New(t, bin, 3, harness.Options{
		Config: "[limits]\nstorage = \"10MiB\"\nupload = \"1MiB/s\"\n",
		Args:   []string{"--sync-interval", "1s"},
	})
	c.FormSwarm(t, harness.SwarmOptions{MemberArgs: map[int][]string{
		0: {"--storage", "2MiB", "--upload", "8MiB/s"},
	}})
	// The stricter of config.toml and the rules entry wins, field by field.
	st := c.Nodes[0].StatusJSON()
	if st.Store.Limit != 2<<20 || st.Limits.Storage != 2<<20 || st.Limits.Upload != 1<<20 {
		t.Errorf("node0 effective limits = %+v store limit %d; want storage 2MiB, upload 1MiB/s", st.Limits, st.Store.Limit)
	}
	if st := c.Nodes[1].StatusJSON(); st.Store.Limit != 10<<20 {
		t.Errorf("node1 store limit = %d, want 10MiB from config.toml", st.Store.Limit)
	}
	harness.WaitFor(t, 30*time.Second, "node2 connected to node0", func() bool {
		return connectedTo(c.Nodes[0], c.Nodes[2].PeerID)
	})

	// Leaving stops serving and forgets the swarm.
	leaver := c.Nodes[2]
	leaver.MustCLI("leave")
	if st := leaver.StatusJSON(); st.Swarm != nil || st.ConnectedPeers != 0 {
		t.Errorf("after leave: swarm %+v, %d peers", st.Swarm, st.ConnectedPeers)
	}
	if _, err := os.Stat(filepath.Join(leaver.Home, "swarm.rules")); !os.IsNotExist(err) {
		t.Errorf("swarm.rules still in the home after leave: %v", err)
	}
	harness.WaitFor(t, 30*time.Second, "node0 sees the leaver gone", func() bool {
		return !connectedTo(c.Nodes[0], leaver.PeerID)
	})
	// And it stays out across a restart.
	if err := leaver.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := leaver.Start(); err != nil {
		t.Fatal(err)
	}
	if st := leaver.StatusJSON(); st.Swarm != nil {
		t.Errorf("the leaver rejoined on restart: %+v", st.Swarm)
	}
}

func TestJoinRefusesNonMemberAndBadDocuments(t *testing.T) {
	c := harness.New(t, bin, 2, harness.Options{})
	s := c.FormSwarm(t, harness.SwarmOptions{})
	outsider := harness.NewNode(t, bin, "outsider", harness.Options{})
	r := outsider.CLI("join", s.Rules)
	if r.Code == 0 || !strings.Contains(r.Stderr, "is not a member") {
		t.Errorf("outsider join: exit %d, %q", r.Code, r.Stderr)
	}
	// A tampered document is refused and the member keeps its definition.
	b, err := os.ReadFile(s.Rules)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "bad.rules")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(b), "copies = 2", "copies = 9", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	before := swarmVersion(c.Nodes[0])
	r = c.Nodes[0].CLI("rules", "push", bad)
	if r.Code == 0 || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("tampered push: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if after := swarmVersion(c.Nodes[0]); after != before {
		t.Errorf("version changed from %d to %d after a refused push", before, after)
	}
	// Replaying the current version is not an upgrade.
	r = c.Nodes[0].CLI("rules", "push", s.Rules)
	if r.Code == 0 || !strings.Contains(r.Stderr, "version") {
		t.Errorf("replayed push: exit %d, stderr %q", r.Code, r.Stderr)
	}
}
