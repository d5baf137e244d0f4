package exchange

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/chunk"
)

func TestFetchOneSource(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	g, src := n[0], n[1]
	data := randomContent(t, 3<<20)
	root, _ := src.put(t, data)
	g.connect(t, src)

	p := g.fetchWhole(t, root, data)
	if p.Bytes != int64(len(data)) || p.Total != int64(len(data)) || p.Resumed != 0 {
		t.Errorf("progress %+v, want %d bytes", p, len(data))
	}
	if got := p.Sources[src.h.ID().String()]; got != int64(len(data)) {
		t.Errorf("source sent %d bytes, want %d", got, len(data))
	}
	if p.Duplicates != 0 {
		t.Errorf("%d duplicate bytes from a single source", p.Duplicates)
	}
	if g.x.BytesReceived() != int64(len(data)) || src.x.BytesSent() != int64(len(data)) {
		t.Errorf("counters: received %d, sent %d, want %d", g.x.BytesReceived(), src.x.BytesSent(), len(data))
	}
	// Fetching again is a no-op: everything is local.
	if err := g.x.Fetch(context.Background(), root, nil); err != nil {
		t.Fatal(err)
	}
	if g.x.BytesReceived() != int64(len(data)) {
		t.Errorf("second fetch received bytes")
	}
}

func TestFetchThreeFullSourcesAllContribute(t *testing.T) {
	n := newNodes(t, 4, nodeConfig{})
	g := n[0]
	data := randomContent(t, 8<<20)
	root, _ := n[1].put(t, data)
	n[2].put(t, data)
	n[3].put(t, data)
	g.connect(t, n[1:]...)

	p := g.fetchWhole(t, root, data)
	var sum int64
	for _, s := range n[1:] {
		b := p.Sources[s.h.ID().String()]
		if b == 0 {
			t.Errorf("source %s contributed nothing: %v", s.h.ID(), p.Sources)
		}
		sum += b
	}
	if sum != int64(len(data)) {
		t.Errorf("sources sent %d useful bytes in all, want %d", sum, len(data))
	}
	t.Logf("per source %v, duplicates %d", p.Sources, p.Duplicates)
}

func TestFetchPartialSources(t *testing.T) {
	n := newNodes(t, 5, nodeConfig{})
	g, seed := n[0], n[4]
	data := randomContent(t, 4<<20)
	root, _ := seed.put(t, data)
	var part [3]int64
	for k := range 3 {
		part[k] = n[1+k].copyPart(t, seed, root, func(i int) bool { return i%3 == k })
	}
	g.connect(t, n[1], n[2], n[3]) // not the seed

	p := g.fetchWhole(t, root, data)
	for k := range 3 {
		if got := p.Sources[n[1+k].h.ID().String()]; got != part[k] {
			t.Errorf("source %d sent %d bytes, holds %d", k, got, part[k])
		}
	}
}

func TestFetchIncompleteUnionFails(t *testing.T) {
	n := newNodes(t, 4, nodeConfig{fetch: FetchOptions{StallTimeout: 300 * time.Millisecond, HaveRefresh: 50 * time.Millisecond}})
	g, seed := n[0], n[3]
	root, _ := seed.put(t, randomContent(t, 1<<20))
	n[1].copyPart(t, seed, root, func(i int) bool { return i%3 == 0 })
	n[2].copyPart(t, seed, root, func(i int) bool { return i%3 == 1 })
	g.connect(t, n[1], n[2])

	err := g.x.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrNoHolder) {
		t.Fatalf("fetch with chunks nobody holds: %v, want ErrNoHolder", err)
	}
	if !strings.Contains(err.Error(), "held by none") {
		t.Errorf("error does not say why: %v", err)
	}
	missing, err := g.st.Missing(context.Background(), root)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := seed.st.Manifest(context.Background(), root)
	if want := len(m.Chunks) - (len(m.Chunks)+2)/3 - (len(m.Chunks)+1)/3; len(missing) != want {
		t.Errorf("%d chunks missing after the failed fetch, want the %d nobody has", len(missing), want)
	}
}

func TestFetchLyingSourceDropped(t *testing.T) {
	n := newNodes(t, 3, nodeConfig{})
	g, liar, honest := n[0], n[1], n[2]
	data := randomContent(t, 4<<20)
	root, _ := liar.put(t, data)
	honest.put(t, data)
	liar.x.corrupt.Store(true)
	g.connect(t, liar, honest)

	p := g.fetchWhole(t, root, data)
	if got := p.Sources[liar.h.ID().String()]; got != 0 {
		t.Errorf("%d bytes from the liar were stored", got)
	}
	if !g.logs.has("dropping lying peer", liar.h.ID().String()) {
		t.Error("the liar was not dropped")
	}
	// The liar sent at most its window of chunks before being dropped
	// (window 8, halved per strike).
	if max := int64(8+4+2) * int64(smallChunks.Max); liar.x.BytesSent() > max {
		t.Errorf("liar sent %d bytes, more than %d", liar.x.BytesSent(), max)
	}
}

func TestFetchOnlyLiarFails(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	g, liar := n[0], n[1]
	root, _ := liar.put(t, randomContent(t, 1<<20))
	liar.x.corrupt.Store(true)
	g.connect(t, liar)
	err := g.x.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrNoHolder) || !strings.Contains(err.Error(), "1 dropped for lying") {
		t.Fatalf("fetch from a liar only: %v", err)
	}
}

func TestFetchSourceClosedMidTransfer(t *testing.T) {
	n := newNodes(t, 3, nodeConfig{})
	g, a, b := n[0], n[1], n[2]
	data := randomContent(t, 8<<20)
	root, _ := a.put(t, data)
	b.put(t, data)
	g.connect(t, a, b)

	var once sync.Once
	closed := false
	var pl progressLog
	err := g.x.Fetch(context.Background(), root, func(p FetchProgress) {
		pl.record(p)
		if p.Sources[b.h.ID().String()] > 0 && p.Bytes > p.Total/4 {
			once.Do(func() { closed = true; b.h.Close() })
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !closed {
		t.Fatal("source b never contributed: the test did not close it mid-transfer")
	}
	if !bytes.Equal(g.content(t, root), data) {
		t.Fatal("fetched content differs")
	}
	p := pl.get()
	if p.Sources[b.h.ID().String()] >= int64(len(data)) {
		t.Errorf("closed source sent everything: %v", p.Sources)
	}
}

func TestFetchResumes(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	g, src := n[0], n[1]
	data := randomContent(t, 4<<20)
	root, _ := src.put(t, data)
	local := g.copyPart(t, src, root, func(i int) bool { return i%2 == 0 })
	g.connect(t, src)

	p := g.fetchWhole(t, root, data)
	if p.Resumed != local {
		t.Errorf("resumed %d bytes, %d were local", p.Resumed, local)
	}
	if got, want := p.Sources[src.h.ID().String()], int64(len(data))-local; got != want {
		t.Errorf("fetched %d bytes, want only the %d not local", got, want)
	}
	if src.x.BytesSent() != int64(len(data))-local {
		t.Errorf("source sent %d bytes, want %d", src.x.BytesSent(), int64(len(data))-local)
	}
}

func TestFetchNoSwarm(t *testing.T) {
	n := newNodes(t, 1, nodeConfig{})
	n[0].x.SetSwarm("")
	root := chunk.ManifestCID([]byte("x"))
	if err := n[0].x.Fetch(context.Background(), root, nil); !errors.Is(err, ErrNoSwarm) {
		t.Fatalf("fetch without a swarm: %v", err)
	}
	if err := n[0].x.Fetch(context.Background(), chunk.SumChunk([]byte("x")), nil); !errors.Is(err, chunk.ErrBadCID) {
		t.Fatalf("fetch of a chunk CID: %v", err)
	}
}

func TestFetchCancelled(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	g, src := n[0], n[1]
	root, _ := src.put(t, randomContent(t, 16<<20))
	src.x.SetLimits(1<<20, 0) // slow enough to cancel in the middle
	g.connect(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	err := g.x.Fetch(ctx, root, func(p FetchProgress) {
		if p.Bytes > 0 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled fetch: %v", err)
	}
	missing, _ := g.st.Missing(context.Background(), root)
	if len(missing) == 0 {
		t.Fatal("cancelled fetch completed")
	}
}
