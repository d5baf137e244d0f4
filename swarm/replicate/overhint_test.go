package replicate

import (
	"bytes"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// A content settled at its target on three members gets a fourth copy
// (a placement at a partition's heal made one). The member that must trim
// is the lowest-ranked holder, one of the three, which settled it and
// would not check it again before its recheck turn (an hour here): the
// others' surveys say the content is over target (HaveRequest.Over), so
// it checks it at its next round and trims its copy; the content is back
// at exactly three copies.
func TestOverTargetHintReachesTheTrimmer(t *testing.T) {
	nodes := testSwarm(t, swarmConfig{n: 4, interval: 300 * time.Millisecond, recheck: time.Hour,
		rep: rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: time.Second}})
	connectAll(t, nodes)
	data := []byte("a content held once too often after a heal")
	scratch, err := chunk.Open(t.TempDir(), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, _, err := scratch.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
	scratch.Close()
	if err != nil {
		t.Fatal(err)
	}
	byID := map[peer.ID]*node{}
	var ids []peer.ID
	for _, nd := range nodes {
		byID[nd.h.Host.ID()] = nd
		ids = append(ids, nd.h.Host.ID())
	}
	ranked := rank(root, ids)
	extra, trimmer := byID[ranked[0]], byID[ranked[len(ranked)-1]]
	var first []*node
	for _, nd := range nodes {
		if nd != extra {
			first = append(first, nd)
		}
	}
	putAt := func(nd *node) {
		if _, _, err := nd.store.Put(t.Context(), bytes.NewReader(data), int64(len(data)), ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range first {
		putAt(nd)
	}
	for _, nd := range nodes {
		nd.start(t)
	}
	swarmtest.WaitFor(t, 30*time.Second, "the three holders settled at target", func() bool {
		for _, nd := range first {
			s := nd.r.Summary()
			if s.AtTarget != 1 || s.Checked != 0 {
				return false
			}
		}
		return true
	})

	putAt(extra)
	holders := func() int {
		n := 0
		for _, nd := range nodes {
			if nd.holds(root) {
				n++
			}
		}
		return n
	}
	swarmtest.WaitFor(t, 30*time.Second, "the lowest-ranked holder trimmed its copy", func() bool {
		return !trimmer.holds(root)
	})
	if n := holders(); n != 3 {
		t.Fatalf("%d copies after the trim, want 3", n)
	}
	for range 5 {
		nodes[0].rounds(t, 1, 10*time.Second)
	}
	if n := holders(); n != 3 {
		t.Fatalf("%d copies five rounds after the trim, want 3", n)
	}
}
