package exchange

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
)

// Who verifies what (docs/STORE.md): the server sends chunks without
// hashing them, the receiver verifies every one and reports a mismatch
// with a BlockRequest carrying Verify, on which the server verifies its
// copy and quarantines it.

// corruptChunkFile flips a byte of nd's file for chunk id behind the
// store's back (docs/STORE.md "Layout").
func corruptChunkFile(t *testing.T, nd *node, id cid.Cid) {
	t.Helper()
	h := id.Hash()
	path := filepath.Join(nd.dir, "chunks", hex.EncodeToString(h[len(h)-32:][:1]), id.String())
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantQuarantined checks that nd dropped id and counts one corrupt object.
func wantQuarantined(t *testing.T, nd *node, id cid.Cid) {
	t.Helper()
	if ok, _ := nd.st.HasChunk(id); ok {
		t.Error("the corrupt chunk is still listed by the server")
	}
	if got := nd.st.Stats().Corrupt; got != 1 {
		t.Errorf("server's corrupt count %d, want 1", got)
	}
}

func TestServeSendsUnhashedVerifiesOnReport(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	_, m := n[1].put(t, randomContent(t, 256<<10))
	id := m.Chunks[0].CID
	corruptChunkFile(t, n[1], id)
	_, c := openCodec(t, n[0], n[1])

	// A plain request is served without hashing: the bad bytes go out.
	resp, ok := roundTrip(t, c, &proto.BlockRequest{ID: 1, CID: id}).(*proto.BlockResponse)
	if !ok {
		t.Fatal("a plain request of a corrupt chunk was not answered with its bytes")
	}
	if err := chunk.VerifyChunk(id, resp.Data); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("served bytes verify: %v", err)
	}
	if n[1].st.Stats().Corrupt != 0 {
		t.Fatal("a plain request hashed the chunk")
	}
	// The report: the server verifies, quarantines and answers NotFound.
	wantCode(t, roundTrip(t, c, &proto.BlockRequest{ID: 2, CID: id, Verify: true}), proto.CodeNotFound)
	wantQuarantined(t, n[1], id)
	if !n[1].logs.has("a peer reported a corrupt chunk", id.String()) {
		t.Error("the server did not log the report")
	}
}

func TestServeVerifyOfGoodChunkServesIt(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	_, m := n[1].put(t, randomContent(t, 256<<10))
	id := m.Chunks[0].CID
	_, c := openCodec(t, n[0], n[1])
	resp, ok := roundTrip(t, c, &proto.BlockRequest{ID: 1, CID: id, Verify: true}).(*proto.BlockResponse)
	if !ok || chunk.VerifyChunk(id, resp.Data) != nil {
		t.Fatal("a verified good chunk was not served")
	}
	if n[1].st.Stats().Corrupt != 0 {
		t.Error("a good chunk was quarantined")
	}
}

// TestFetchCorruptChunkOnServer: the only source holds a corrupt copy of
// one chunk. The getter refuses it, the source learns (quarantine) and the
// fetch fails naming the chunk nobody holds; with a second, good source
// the fetch then completes.
func TestFetchCorruptChunkOnServer(t *testing.T) {
	n := newNodes(t, 3, nodeConfig{fetch: FetchOptions{StallTimeout: 300 * time.Millisecond, HaveRefresh: 50 * time.Millisecond}})
	g, bad, good := n[0], n[1], n[2]
	data := randomContent(t, 1<<20)
	root, m := bad.put(t, data)
	good.put(t, data)
	id := m.Chunks[len(m.Chunks)/2].CID
	corruptChunkFile(t, bad, id)

	g.connect(t, bad)
	err := g.x.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrNoHolder) {
		t.Fatalf("fetch from the corrupt source only: %v, want ErrNoHolder", err)
	}
	t.Logf("fetch from the corrupt source: %v", err)
	if ok, _ := g.st.HasChunk(id); ok {
		t.Fatal("the getter stored the corrupt chunk")
	}
	wantQuarantined(t, bad, id)
	if !g.logs.has("does not match its CID", bad.h.ID().String()) {
		t.Error("the getter did not log the bad chunk")
	}

	g.connect(t, good)
	g.fetchWhole(t, root, data)
}

// TestReportCorrupt: the report the shard puller sends on a stream of its
// own makes the server quarantine its copy.
func TestReportCorrupt(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	_, m := n[1].put(t, randomContent(t, 256<<10))
	id := m.Chunks[0].CID
	corruptChunkFile(t, n[1], id)
	n[0].connect(t, n[1])
	if err := n[0].x.reportCorrupt(context.Background(), n[0].x.Protocol(), n[1].h.ID(), id); err != nil {
		t.Fatal(err)
	}
	wantQuarantined(t, n[1], id)
}
