package exchange

import (
	"bytes"
	"context"
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
