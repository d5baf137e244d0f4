package test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// getWithSources fetches root on n through the control API and returns the
// bytes each source delivered, from the last progress event.
func getWithSources(t *testing.T, n *harness.Node, root, out string, onProgress func(client.Progress)) map[string]int64 {
	t.Helper()
	var mu sync.Mutex
	var last client.Progress
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := n.Client().Get(ctx, client.GetRequest{CID: root, Path: out}, func(p client.Progress) {
		mu.Lock()
		if p.Sources != nil {
			last = p
		}
		mu.Unlock()
		if onProgress != nil {
			onProgress(p)
		}
	})
	if err != nil {
		t.Fatalf("get on %s: %v\n%s", n.Name, err, n.LogTail(30))
	}
	mu.Lock()
	defer mu.Unlock()
	return last.Sources
}

func TestGetFindsHoldersThroughDHT(t *testing.T) {
	// node0 is the only member with an address; the getter (node1) and the
	// two holders (node2, node3) are listed without addresses, so the
	// getter must learn the holders' addresses from the DHT.
	// The getter joins after the holders have stored and announced.
	c := harness.New(t, bin, 4, fastSync)
	// node0 is a client member, so replication never places a copy on it;
	// the two holders already make copies=2.
	s := c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 1, Roles: map[int]string{0: "client"},
		NoAddrs: map[int]bool{1: true, 2: true, 3: true}, NoJoin: map[int]bool{1: true}})
	getter, h1, h2 := c.Nodes[1], c.Nodes[2], c.Nodes[3]

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandomFile(t, src, 48<<20, 11)
	root := harness.LastLine(h1.MustCLI("put", src))
	if r2 := harness.LastLine(h2.MustCLI("put", src)); r2 != root {
		t.Fatalf("same file, different CIDs: %s %s", root, r2)
	}
	getter.MustCLI("join", s.Rules)
	harness.WaitFor(t, 30*time.Second, "getter connected to node0", func() bool {
		return connectedTo(getter, c.Nodes[0].PeerID)
	})
	// Since members without addresses are reached through the public
	// members' relays (docs/NAT.md), the getter may also hold relayed
	// connections to the holders; chunks never cross the relay, so the
	// holders still have to be found in the DHT and dialed directly.
	out := filepath.Join(dir, "out")
	sources := getWithSources(t, getter, root, out, nil)
	if fileSHA256(t, out) != sum {
		t.Fatal("fetched file differs")
	}
	if sources[h1.PeerID] == 0 || sources[h2.PeerID] == 0 {
		t.Errorf("both holders should have served part of the file; sources = %v", sources)
	}
	if sources[c.Nodes[0].PeerID] != 0 {
		t.Errorf("node0 holds nothing but served %d bytes", sources[c.Nodes[0].PeerID])
	}
	if st := getter.StatusJSON(); st.BytesReceived < 48<<20 {
		t.Errorf("getter bytes_received = %d, want at least the file size", st.BytesReceived)
	}
}

func TestGetSurvivesKilledSource(t *testing.T) {
	// The getter's download limit stretches the transfer so that a source
	// can be killed in the middle of it.
	getter := harness.NewNode(t, bin, "getter", harness.Options{Config: "[limits]\ndownload = \"48MiB/s\"\n", Args: fastSync.Args})
	h1 := harness.NewNode(t, bin, "h1", fastSync)
	h2 := harness.NewNode(t, bin, "h2", fastSync)
	c := harness.Of(bin, getter, h1, h2)
	c.FormSwarm(t, harness.SwarmOptions{Roles: map[int]string{0: "client"}}) // no copy is placed on the getter

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 192 << 20
	sum := writeRandomFile(t, src, size, 12)
	root := harness.LastLine(h1.MustCLI("put", src))
	h2.MustCLI("put", src)
	harness.WaitFor(t, 30*time.Second, "getter connected to both holders", func() bool {
		return connectedTo(getter, h1.PeerID) && connectedTo(getter, h2.PeerID)
	})

	var once sync.Once
	killed := make(chan struct{})
	out := filepath.Join(dir, "out")
	getWithSources(t, getter, root, out, func(p client.Progress) {
		if p.Bytes > size/4 {
			once.Do(func() { h1.Kill(); close(killed) })
		}
	})
	select {
	case <-killed:
	default:
		t.Fatal("the transfer finished before a source could be killed")
	}
	if fileSHA256(t, out) != sum {
		t.Fatal("fetched file differs after a source was killed")
	}
}

func TestGetSurvivesLyingSource(t *testing.T) {
	getter := harness.NewNode(t, bin, "getter", fastSync)
	liar := harness.NewNode(t, bin, "liar", harness.Options{Args: fastSync.Args, Fault: true, Env: []string{"ANNEX_SWARM_FAULT=corrupt"}})
	honest := harness.NewNode(t, bin, "honest", fastSync)
	c := harness.Of(bin, getter, liar, honest)
	c.FormSwarm(t, harness.SwarmOptions{Roles: map[int]string{0: "client"}}) // no copy is placed on the getter

	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandomFile(t, src, 64<<20, 13)
	root := harness.LastLine(liar.MustCLI("put", src))
	honest.MustCLI("put", src)
	harness.WaitFor(t, 30*time.Second, "getter connected to both holders", func() bool {
		return connectedTo(getter, liar.PeerID) && connectedTo(getter, honest.PeerID)
	})
	out := filepath.Join(dir, "out")
	sources := getWithSources(t, getter, root, out, nil)
	if fileSHA256(t, out) != sum {
		t.Fatal("fetched file differs: a lying source got through")
	}
	if sources[liar.PeerID] != 0 {
		t.Errorf("the liar's corrupt chunks were counted as delivered: %v", sources)
	}
	if st := liar.StatusJSON(); st.BytesSent == 0 {
		t.Error("the liar never served anything: the fault was not exercised")
	}
	if out := getter.MustCLI("fsck"); !strings.Contains(out, "0 corrupt") {
		t.Errorf("getter store not clean after the fetch: %s", out)
	}
}
