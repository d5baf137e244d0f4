//go:build faultinject

package exchange

import (
	"bytes"
	"context"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

// With the faultinject tag, ANNEX_SWARM_FAULT=corrupt makes a server lie,
// and a fetch from it plus an honest source still arrives correct.
func TestFaultFromEnvironment(t *testing.T) {
	t.Setenv(FaultEnv, "corrupt")
	n := newNodes(t, 1, nodeConfig{})
	t.Setenv(FaultEnv, "")
	n = append(n, newNodes(t, 2, nodeConfig{})...)
	liar, g, honest := n[0], n[1], n[2]
	if !liar.x.corrupt.Load() || g.x.corrupt.Load() {
		t.Fatal("fault switch does not follow the environment")
	}
	ids := []peer.ID{liar.h.ID(), g.h.ID(), honest.h.ID()}
	for _, nd := range n {
		nd.gater.SetMembers(ids)
	}
	data := randomContent(t, 1<<20)
	root, _ := liar.put(t, data)
	honest.put(t, data)
	g.connect(t, liar, honest)
	if err := g.x.Fetch(context.Background(), root, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.content(t, root), data) {
		t.Fatal("fetched content differs")
	}
}
