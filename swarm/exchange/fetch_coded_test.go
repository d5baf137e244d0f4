package exchange

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// codedSwarm is an uploader holding a 4+2 coded content and six holders,
// holder i having pulled shard set i from the uploader (ServeCoded,
// FetchShards, PutShards), as a placement does.
func codedSwarm(t *testing.T, size int) (nodes []*node, root cid.Cid, m *chunk.Manifest, data []byte) {
	t.Helper()
	ctx := context.Background()
	nodes = newNodes(t, 8, nodeConfig{})
	up := nodes[1]
	data = randomContent(t, size)
	root, m, err := up.st.PutCoded(ctx, bytes.NewReader(data), int64(size), "", 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	release := up.x.ServeCoded(m)
	defer release()
	// The six holders pull at once, as in a put: the on-demand coder's
	// cache is shared and evicted under them.
	var setBytes atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range 6 {
		h := nodes[2+i]
		h.connect(t, up)
		wg.Go(func() {
			ids, err := m.ShardSet(i)
			if err != nil {
				errs[i] = err
				return
			}
			shards := make([][]byte, len(ids))
			if err := h.x.FetchShards(ctx, up.h.ID(), ids, func(j int, d []byte) error {
				shards[j] = append([]byte(nil), d...)
				setBytes.Add(int64(len(d)))
				return nil
			}); err != nil {
				errs[i] = fmt.Errorf("holder %d fetching its set: %w", i, err)
				return
			}
			_, errs[i] = h.st.PutShards(ctx, m, i, shards)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
		if held, err := nodes[2+i].st.HeldShards(ctx, root); err != nil || len(held) != 1 || held[0] != i {
			t.Fatalf("holder %d holds sets %v (%v), want [%d]", i, held, err, i)
		}
	}
	// The uploader sent each shard once: n/k of the content, plus padding.
	if sent := up.x.BytesSent(); sent != setBytes.Load() || sent > int64(size)*155/100 {
		t.Errorf("uploader sent %d bytes for %d bytes of shards of a %d-byte content", sent, setBytes.Load(), size)
	}
	return nodes, root, m, data
}

func TestFetchCodedFromDataHoldersDecodesNothing(t *testing.T) {
	nodes, root, _, data := codedSwarm(t, 1<<20)
	g := nodes[0]
	g.connect(t, nodes[2:]...)
	p := g.fetchWhole(t, root, data)
	for i := 4; i < 6; i++ {
		if b := p.Sources[nodes[2+i].h.ID().String()]; b != 0 {
			t.Errorf("parity holder %d sent %d bytes while every data holder was up", i, b)
		}
	}
	if got := g.x.BytesReceived(); got > int64(len(data))*101/100+4<<10 {
		t.Errorf("received %d bytes for a %d-byte content", got, len(data))
	}
}

func TestFetchCodedSurvivesLiarAndLostHolder(t *testing.T) {
	nodes, root, _, data := codedSwarm(t, 1<<20)
	g := nodes[0]
	g.connect(t, nodes[2:]...)
	nodes[2].x.corrupt.Store(true) // holder of set 0 lies
	if err := nodes[3].h.Close(); err != nil {
		t.Fatal(err) // holder of set 1 is gone
	}
	g.fetchWhole(t, root, data)
	if !g.logs.has("shard source lost", "does not match") {
		t.Error("the lying holder was not noticed")
	}
}

func TestFetchCodedTooFewHoldersThenWholeCopy(t *testing.T) {
	nodes, root, _, data := codedSwarm(t, 1<<20)
	g := nodes[0]
	g.connect(t, nodes[2:5]...) // sets 0, 1, 2 only
	err := g.x.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrNoHolder) || !strings.Contains(err.Error(), "3 of the 4 shard sets") {
		t.Fatalf("fetch from 3 holders of a 4+2 content: %v, want ErrNoHolder naming 3 of 4", err)
	}
	// The uploader's whole copy (its ServeCoded released) completes it.
	g.connect(t, nodes[2], nodes[3], nodes[4], nodes[1])
	g.fetchWhole(t, root, data)
}
