package exchange

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// TestFetchAsksAgainASourceThatLackedTheManifest: the uploader sends the
// fetcher to another member for half the chunks (its super-seeding gate
// answers Busy), and that member gets the manifest and those chunks only
// after the fetch started (a holder placed later, replacing one that
// failed). The fetch asks it again and completes from it.
func TestFetchAsksAgainASourceThatLackedTheManifest(t *testing.T) {
	ns := newNodes(t, 3, nodeConfig{})
	up, late, f := ns[0], ns[1], ns[2]
	up.connect(t, late, f)
	late.connect(t, up, f)
	f.connect(t, up, late)
	data := randomContent(t, 1<<20)
	root, m := up.put(t, data)
	if len(m.Chunks) < 4 {
		t.Fatalf("content of %d chunks; the test needs several", len(m.Chunks))
	}
	refused := map[cid.Cid]bool{}
	for i, r := range m.Chunks {
		if i%2 == 1 {
			refused[r.CID] = true
		}
	}
	fid := f.h.ID()
	up.x.SetServeGate(func(p peer.ID, c cid.Cid) bool { return p != fid || !refused[c] })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.x.Fetch(ctx, root, nil) }()
	// The late holder gets the manifest once f has asked it and been told
	// it does not hold it.
	deadline := time.After(10 * time.Second)
	for !f.logs.has("source lost", late.h.ID().String()) {
		select {
		case err := <-done:
			t.Fatalf("the fetch ended before the late holder had anything: %v", err)
		case <-deadline:
			t.Fatal("the fetcher never asked the late holder")
		case <-time.After(20 * time.Millisecond):
		}
	}
	late.copyPart(t, up, root, func(i int) bool { return i%2 == 1 })
	if err := <-done; err != nil {
		t.Fatalf("fetch: %v", err)
	}
	if !bytes.Equal(f.content(t, root), data) {
		t.Fatal("fetched content differs")
	}
}

// TestFetchStallsOutDespiteAbsentSources: the chunks left are held by no
// one reachable; one source holds the manifest only (it was being placed
// when its uploader went down) and another, connected, does not hold the
// manifest at all. Asking the latter again every few refreshes is not
// progress: the fetch fails with ErrNoHolder after its stall timeout
// instead of waiting until its caller gives up (the chaos suite's seed 1
// saw a get hang for its whole 90 s bound this way).
func TestFetchStallsOutDespiteAbsentSources(t *testing.T) {
	n := newNodes(t, 4, nodeConfig{fetch: FetchOptions{StallTimeout: 300 * time.Millisecond, HaveRefresh: 50 * time.Millisecond}})
	g, partial, absent, gone := n[0], n[1], n[2], n[3]
	root, _ := gone.put(t, randomContent(t, 1<<20))
	partial.copyPart(t, gone, root, func(i int) bool { return false })
	g.copyPart(t, gone, root, func(i int) bool { return false })
	g.connect(t, partial, absent)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := g.x.Fetch(ctx, root, nil)
	if !errors.Is(err, ErrNoHolder) {
		t.Fatalf("fetch of chunks nobody reachable holds: %v, want ErrNoHolder", err)
	}
	if !g.logs.has("source lost", absent.h.ID().String()) {
		t.Error("the source without the manifest was never asked")
	}
}
