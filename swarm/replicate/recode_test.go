package replicate

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// recodedTo waits until every node resolves old to another root whose
// layout is coded as wanted, and returns it.
func recodedTo(t *testing.T, nodes []*node, old cid.Cid, coded bool) cid.Cid {
	t.Helper()
	var next cid.Cid
	swarmtest.WaitFor(t, 90*time.Second, "every member resolving the re-coded root", func() bool {
		next = nodes[0].r.Resolve(old)
		if next == old {
			return false
		}
		for _, nd := range nodes {
			if nd.r.Resolve(old) != next {
				return false
			}
		}
		for _, nd := range nodes {
			if m, err := nd.store.Manifest(t.Context(), next); err == nil {
				return m.Coded() == coded
			}
		}
		return false
	})
	return next
}

// readBack fetches root into a file on nd and compares it with data.
func readBack(t *testing.T, nd *node, root cid.Cid, data []byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := nd.x.FetchInto(ctx, root, f, nil); err != nil {
		t.Fatalf("fetching %s: %v", root, err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s read back differs", root)
	}
}

// TestRecodeOnSchemeChange: a replicated content is re-coded when the
// rules turn erasure 4+2 on, by one member, into six shard sets on six
// members, the old whole copies deleted by the successor record; when the
// rules turn erasure off, it is replicated again with `copies` copies and
// the sets go. The bytes read back each time, and every member resolves
// the roots to the last one.
func TestRecodeOnSchemeChange(t *testing.T) {
	nodes := testSwarm(t, swarmConfig{n: 7, interval: 300 * time.Millisecond, pageTimeout: 2 * time.Second, ping: time.Second, recode: true,
		rep: rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: time.Hour}})
	connectAll(t, nodes)
	for _, nd := range nodes {
		nd.start(t)
	}
	data := swarmtest.RandomContent(t, 2<<20)
	const key = "SHA256E-s2097152--recode"
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	o, err := nodes[0].putAsDaemon(ctx, bytes.NewReader(data), int64(len(data)), key)
	if err != nil {
		t.Fatal(err)
	}
	holdsWhole := func(root cid.Cid) int {
		n := 0
		for _, nd := range nodes {
			if nd.holds(root) {
				n++
			}
		}
		return n
	}
	if n := holdsWhole(o); n != 2 {
		t.Fatalf("%d whole copies after the put, want 2", n)
	}

	setRules(t, nodes, func(r *rules.Replication) { r.Erasure = rules.Erasure{Data: 4, Parity: 2, MinSize: 1 << 20} })
	n := recodedTo(t, nodes, o, true)
	swarmtest.WaitFor(t, time.Minute, "six sets held, no whole copy left", func() bool {
		return setHolders(t, nodes, n) == 6 && holdsWhole(n) == 0 && holdsWhole(o) == 0
	})
	for _, nd := range nodes {
		if _, err := nd.store.Manifest(t.Context(), o); err == nil {
			t.Fatal("a member still records the old root")
		}
	}
	recoded := func() uint64 {
		var n uint64
		for _, nd := range nodes {
			n += nd.r.Recoded()
		}
		return n
	}
	if n := recoded(); n != 1 {
		t.Fatalf("%d re-codings, want exactly one member to act", n)
	}
	m, err := nodes[0].r.manifestOf(t.Context(), n)
	if err != nil {
		t.Fatal(err)
	}
	if exact, err := CheckSuccessor(o, nil, m); err != nil || !exact {
		t.Fatalf("the successor's manifest does not prove it: exact %v, err %v", exact, err)
	}
	if got, err := nodes[3].r.ResolveChecked(t.Context(), o); err != nil || got != n {
		t.Fatalf("ResolveChecked = %s, %v; want %s", got, err, n)
	}
	readBack(t, nodes[6], n, data)

	// Back to replicated: the coding is deterministic and so is the
	// replicated form, so the content is the first root again, restored
	// by the put (its Restore record wins over its successor record).
	setRules(t, nodes, func(r *rules.Replication) { r.Erasure = rules.Erasure{} })
	swarmtest.WaitFor(t, 90*time.Second, "replicated again as the first root, no set left", func() bool {
		for _, nd := range nodes {
			if nd.r.Resolve(o) != o || nd.r.Resolve(n) != o {
				return false
			}
		}
		return holdsWhole(o) == 2 && setHolders(t, nodes, n) == 0
	})
	readBack(t, nodes[5], o, data)
	if n := recoded(); n != 2 {
		t.Fatalf("%d re-codings in all, want 2 (one member each time)", n)
	}
}
