package test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// formCoded forms a swarm of n storage members and a client with
// erasure = 4+2 (copies_min 2: success threshold 5).
func formCoded(t *testing.T, n int) *replSwarm {
	t.Helper()
	return formCodedWith(t, n, harness.SwarmOptions{Copies: 2, CopiesMin: 2}, "1h")
}

// formCodedWith is formCoded with the swarm options o and repair_after.
func formCodedWith(t *testing.T, n int, o harness.SwarmOptions, repairAfter string) *replSwarm {
	t.Helper()
	rs := formRepl(t, n, true, o, repairAfter, nil)
	pushErasure(t, rs, "4+2")
	return rs
}

// pushErasure sets the erasure scheme (coding from 1 MiB) in rs's rules,
// pushes them and waits until every member has them.
func pushErasure(t *testing.T, rs *replSwarm, scheme string) {
	t.Helper()
	pushRules(t, rs, "erasure="+scheme, "erasure_min_size=1MiB")
}

// TestErasurePutWhereGetAfterKills: a coded put from a client places six
// shard sets on six distinct members for about 1.5 × the file, where shows
// them, and after kill -9 of two holders a get on another member returns
// the file byte for byte.
func TestErasurePutWhereGetAfterKills(t *testing.T) {
	rs := formCoded(t, 7)
	laptop := rs.client
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 6 << 20
	sum := writeRandomFile(t, src, size, 12)

	usedBefore := map[string]int64{}
	for _, n := range rs.c.Nodes[:7] {
		usedBefore[n.Name] = n.StatusJSON().Store.Used
	}
	sentBefore := laptop.StatusJSON().BytesSent
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := laptop.Client().Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("put: %v\n%s", err, laptop.LogTail(40))
	}
	if res.Copies < 5 {
		t.Fatalf("put returned with %d shard sets placed, the success threshold is 5", res.Copies)
	}
	var w client.WhereResult
	harness.WaitFor(t, 2*time.Minute, "six shard sets placed", func() bool {
		w = where(t, laptop, res.CID)
		return w.Placed == 6
	})
	if w.Layout != "erasure" || w.Scheme != "4+2" || w.Success != 5 || w.Target != 6 || len(w.Shards) != 6 || len(w.Holders) != 6 {
		t.Fatalf("where = %+v, want an erasure 4+2 content on 6 members", w)
	}
	if w.Survives == nil || *w.Survives != 2 || w.Copies != 6 {
		t.Fatalf("where = %+v, want survives 2 with h = 6", w)
	}
	seen := map[int]bool{}
	for _, h := range w.Shards {
		if len(h.Sets) != 1 || seen[h.Sets[0]] || h.Peer == laptop.PeerID {
			t.Fatalf("shard holders %+v: want one distinct set per storage member", w.Shards)
		}
		seen[h.Sets[0]] = true
	}
	sent := laptop.StatusJSON().BytesSent - sentBefore
	var stored int64
	for _, n := range rs.c.Nodes[:7] {
		stored += n.StatusJSON().Store.Used - usedBefore[n.Name]
	}
	t.Logf("uploader sent %d bytes (%.3f×), members store %d bytes (%.3f×) for a %d-byte file",
		sent, float64(sent)/size, stored, float64(stored)/size, size)
	if sent > size*155/100 {
		t.Errorf("uploader sent %d bytes, more than 1.55 × %d", sent, size)
	}
	if stored > size*155/100 {
		t.Errorf("storage members store %d bytes, more than 1.55 × %d", stored, size)
	}

	harness.WaitFor(t, time.Minute, "status counts the content as surviving 2 more losses", func() bool {
		r := laptop.StatusJSON().Replication
		return r != nil && r.Coded == 1 && r.Survives["2"] == 1
	})

	// kill -9 two holders; a get on the member holding no set still works.
	killed := map[string]bool{}
	for _, h := range w.Shards[:2] {
		memberByName(rs.c, h.Member).Kill()
		killed[h.Member] = true
	}
	var getter *harness.Node
	for _, n := range rs.c.Nodes[:7] {
		if !holds(w, n.PeerID) {
			getter = n
		}
	}
	if getter == nil {
		t.Fatal("no storage member without a shard set")
	}
	if w := where(t, getter, res.CID); w.Survives == nil || *w.Survives != 0 {
		t.Errorf("after two kills where = %+v, want survives 0", w)
	}
	out := filepath.Join(dir, "out")
	getter.MustCLI("get", res.CID, "-o", out)
	if fileSHA256(t, out) != sum {
		t.Fatal("the file got back after two kills differs")
	}

	// A third kill leaves 4 storage members: a coded put needs 5 and is
	// refused before sending anything.
	for _, h := range w.Shards[2:3] {
		memberByName(rs.c, h.Member).Kill()
	}
	small := filepath.Join(dir, "small")
	writeRandomFile(t, small, 2<<20, 13)
	var last string
	harness.WaitFor(t, time.Minute, "a coded put refused with 4 live storage members", func() bool {
		r := laptop.CLI("put", small)
		last = r.Stderr
		return r.Code != 0 && strings.Contains(r.Stderr, "4 live storage members, a coded put needs 5 (success threshold)")
	})
	t.Logf("refused: %s", strings.TrimSpace(last))
}

func holds(w client.WhereResult, peerID string) bool {
	for _, h := range w.Shards {
		if h.Peer == peerID {
			return true
		}
	}
	return false
}
