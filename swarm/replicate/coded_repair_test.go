package replicate

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// codedSwarm starts 8 members with erasure 4+2 (success and repair
// threshold 5) and puts a 2 MiB coded content from the first, which then
// drops its whole copy: six members hold one set each, one holds none, and
// so does the uploader. It returns the nodes, the content and its bytes.
func codedSwarm(t *testing.T, grace time.Duration) ([]*node, cid.Cid, []byte) {
	t.Helper()
	// Pings every second: a member stays alive 6 s without an answer, so
	// that a loaded machine (or the race detector) does not make the slow
	// members gone; the members killed are gone at once (disconnected).
	nodes := testSwarm(t, swarmConfig{n: 8, interval: 500 * time.Millisecond, pageTimeout: 2 * time.Second, ping: time.Second,
		rep: rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: grace, Erasure: rules.Erasure{Data: 4, Parity: 2}}})
	connectAll(t, nodes)
	for _, nd := range nodes {
		nd.start(t)
	}
	up := nodes[0]
	t0 := time.Now()
	data := swarmtest.RandomContent(t, 2<<20)
	root, _, err := up.store.PutCoded(t.Context(), bytes.NewReader(data), int64(len(data)), "", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := up.r.Seed(ctx, root, nil); err != nil {
		t.Fatalf("seeding: %v", err)
	}
	t.Logf("put and seeded: %s", time.Since(t0))
	swarmtest.WaitFor(t, time.Minute, "six shard sets placed", func() bool {
		return setHolders(t, nodes, root) == 6
	})
	if err := up.store.Remove(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	return nodes, root, data
}

// setHolders counts the members holding exactly one shard set of root,
// each a distinct set.
func setHolders(t *testing.T, nodes []*node, root cid.Cid) int {
	t.Helper()
	seen := map[int]bool{}
	for _, nd := range nodes {
		held, err := nd.store.HeldShards(t.Context(), root)
		if err != nil || len(held) == 0 {
			continue
		}
		if len(held) != 1 || seen[held[0]] {
			t.Fatalf("a member holds sets %v (held elsewhere: %v)", held, seen)
		}
		seen[held[0]] = true
	}
	return len(seen)
}

// holderOf returns the node holding set i of root.
func holderOf(t *testing.T, nodes []*node, root cid.Cid, i int) *node {
	t.Helper()
	for _, nd := range nodes {
		if held, _ := nd.store.HeldShards(t.Context(), root); len(held) == 1 && held[0] == i {
			return nd
		}
	}
	t.Fatalf("no holder of set %d", i)
	return nil
}

func repaired(nodes []*node) uint64 {
	var n uint64
	for _, nd := range nodes {
		n += nd.r.CodedRepaired()
	}
	return n
}

// Two set holders that answer too late for surveys but stay connected
// are slow, not lost: nothing is rebuilt however long it lasts. Two holders
// gone (data sets 0 and 1) are lost once repair_after has passed: their two
// sets, and only those, are rebuilt from k others on the two members that
// held none, and a get reads the content back through them.
func TestCodedRepairSlowIsNotLostAndTwoLostAreRebuilt(t *testing.T) {
	const grace = 4 * time.Second
	start := time.Now()
	nodes, root, data := codedSwarm(t, grace)
	t.Logf("swarm formed and content placed: %s", time.Since(start))
	slow := []*node{holderOf(t, nodes, root, 4), holderOf(t, nodes, root, 5)}
	for _, nd := range slow {
		nd.delay.Store(int64(3 * time.Second))
	}
	t0 := time.Now()
	for time.Since(t0) < 2*grace {
		nodes[0].rounds(t, 1, 20*time.Second)
	}
	t.Logf("slow phase: %s", time.Since(t0))
	for _, nd := range slow {
		if nodes[0].h.Host.Network().Connectedness(nd.h.Host.ID()) != network.Connected {
			t.Fatal("a slow member was disconnected")
		}
		nd.delay.Store(0)
	}
	if n := repaired(nodes); n != 0 {
		t.Fatalf("%d shard sets rebuilt while two holders were only slow", n)
	}

	gone := []*node{holderOf(t, nodes, root, 0), holderOf(t, nodes, root, 1)}
	killed := map[peer.ID]bool{}
	for _, nd := range gone {
		killed[nd.h.Host.ID()] = true
		nd.stopNode()
		if err := nd.h.Host.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t1 := time.Now()
	swarmtest.WaitFor(t, 2*time.Minute, "the two lost sets rebuilt", func() bool { return repaired(nodes) >= 2 })
	t.Logf("rebuilt %s after the kills", time.Since(t1))
	if d := time.Since(t1); d < grace {
		t.Fatalf("rebuilt %s after the holders went, before repair_after (%s)", d, grace)
	}
	var live []*node
	for _, nd := range nodes {
		if !killed[nd.h.Host.ID()] {
			live = append(live, nd)
		}
	}
	swarmtest.WaitFor(t, 30*time.Second, "six holders again", func() bool { return setHolders(t, live, root) == 6 })
	var h CodedHolders
	swarmtest.WaitFor(t, 30*time.Second, "where: survives 2", func() bool {
		var ok bool
		var err error
		h, ok, err = live[0].r.WhereCoded(t.Context(), root)
		return err == nil && ok && h.Survives() == 2
	})
	for _, nd := range live {
		nd.rounds(t, 3, 20*time.Second)
	}
	if n := repaired(nodes); n != 2 {
		t.Fatalf("%d shard sets rebuilt for two lost ones", n)
	}

	// The uploader dropped its copy: its get decodes from the holders,
	// data sets 0 and 1 now rebuilt ones.
	up := nodes[0]
	if err := up.x.Fetch(t.Context(), root, nil); err != nil {
		t.Fatalf("get after the repair: %v", err)
	}
	var out bytes.Buffer
	if _, err := up.store.WriteTo(t.Context(), root, &out); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), data) {
		t.Fatal("the content read back after the repair differs")
	}
}

// A set held by two members (a member back after its set was rebuilt
// elsewhere) is given up by the lower-ranked of the two once that has
// lasted repair_after: the content keeps its six sets on six members,
// and nothing is rebuilt.
func TestCodedSurplusSetIsTrimmed(t *testing.T) {
	nodes, root, _ := codedSwarm(t, time.Second)
	const set = 2
	holder := holderOf(t, nodes, root, set)
	var spare *node
	for _, nd := range nodes[1:] {
		if held, _ := nd.store.HeldShards(t.Context(), root); len(held) == 0 {
			spare = nd
			break
		}
	}
	if spare == nil {
		t.Fatal("no member without a set")
	}
	m, err := holder.store.Manifest(t.Context(), root)
	if err != nil {
		t.Fatal(err)
	}
	shards := make([][]byte, len(m.Chunks))
	for j := range m.Chunks {
		if shards[j], err = holder.store.GetShard(t.Context(), root, j, set); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := spare.store.PutShards(t.Context(), m, set, shards); err != nil {
		t.Fatal(err)
	}
	holdersOf := func() int {
		n := 0
		for _, nd := range nodes {
			if held, _ := nd.store.HeldShards(t.Context(), root); len(held) == 1 && held[0] == set {
				n++
			}
		}
		return n
	}
	if holdersOf() != 2 {
		t.Fatal("the set is not held twice")
	}
	swarmtest.WaitFor(t, time.Minute, "the surplus set trimmed", func() bool { return holdersOf() == 1 })
	for _, nd := range nodes {
		nd.rounds(t, 2, 20*time.Second)
	}
	if n := setHolders(t, nodes, root); n != 6 || holdersOf() != 1 {
		t.Fatalf("after the trim: %d distinct sets held, set %d held %d times; want 6 and 1", n, set, holdersOf())
	}
	var rebuilt uint64
	for _, nd := range nodes {
		rebuilt += nd.r.CodedRepaired()
	}
	if rebuilt != 0 {
		t.Fatalf("%d sets rebuilt while every set was held", rebuilt)
	}
}
