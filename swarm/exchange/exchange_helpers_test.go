package exchange

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// testSwarmID is the swarm every test exchange serves.
const testSwarmID = "test-swarm"

// smallChunks make a few MiB of content hundreds of chunks.
var smallChunks = chunk.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

// node is one in-process member: a libp2p host on loopback TCP, a chunk
// store in a temporary folder and an exchange.
type node struct {
	h     host.Host
	gater *membership.Gater
	st    *chunk.Store
	x     *Exchange
	logs  *logRecorder
	dir   string // the store's folder
	// members is what the exchange's Members returns.
	mu      sync.Mutex
	members []peer.ID
}

type nodeConfig struct {
	params chunk.Params
	fetch  FetchOptions
}

// newNodes starts n members that admit each other. They are not connected;
// use connect.
func newNodes(t testing.TB, n int, cfg nodeConfig) []*node {
	t.Helper()
	if cfg.params == (chunk.Params{}) {
		cfg.params = smallChunks
	}
	nodes := make([]*node, n)
	for i, m := range swarmtest.Hosts(t, n) {
		dir := t.TempDir()
		st, err := chunk.Open(dir, chunk.Options{Chunking: cfg.params})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nd := &node{h: m.Host, gater: m.Gater, st: st, logs: &logRecorder{}, dir: dir}
		nd.x = New(Options{
			Host: m.Host, Store: st, Logger: slog.New(nd.logs),
			Members: nd.getMembers, Fetch: cfg.fetch,
		})
		nd.x.SetSwarm(testSwarmID)
		ctx, cancel := context.WithCancel(context.Background())
		ran := make(chan struct{})
		go func() { nd.x.Run(ctx); close(ran) }()
		t.Cleanup(func() { cancel(); <-ran })
		nodes[i] = nd
	}
	return nodes
}

func (nd *node) getMembers() []peer.ID {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return append([]peer.ID(nil), nd.members...)
}

// connect connects nd to others and makes them its Members, in that order.
func (nd *node) connect(t testing.TB, others ...*node) {
	t.Helper()
	var ids []peer.ID
	for _, o := range others {
		swarmtest.Connect(t, nd.h, o.h)
		ids = append(ids, o.h.ID())
	}
	nd.mu.Lock()
	nd.members = ids
	nd.mu.Unlock()
}

// randomContent returns n random bytes.
func randomContent(t testing.TB, n int) []byte { return swarmtest.RandomContent(t, n) }

// put stores data on nd and returns its root and manifest.
func (nd *node) put(t testing.TB, data []byte) (cid.Cid, *chunk.Manifest) {
	t.Helper()
	root, m, err := nd.st.Put(context.Background(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	return root, m
}

// copyPart gives nd the manifest root and the chunks i of it for which keep
// returns true, read from src.
func (nd *node) copyPart(t testing.TB, src *node, root cid.Cid, keep func(i int) bool) (kept int64) {
	t.Helper()
	ctx := context.Background()
	m, err := src.st.Manifest(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nd.st.PutManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	for i, r := range m.Chunks {
		if !keep(i) {
			continue
		}
		data, err := src.st.GetChunk(ctx, r.CID)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.st.PutChunk(ctx, r.CID, data); err != nil {
			t.Fatal(err)
		}
		kept += int64(r.Length)
	}
	return kept
}

// content reads root back from nd's store.
func (nd *node) content(t testing.TB, root cid.Cid) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := nd.st.WriteTo(context.Background(), root, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// progressLog keeps the last progress reported.
type progressLog struct {
	mu    sync.Mutex
	last  FetchProgress
	calls int
}

// fetchWhole fetches root into nd, checks that the content is data and
// returns the last progress reported.
func (nd *node) fetchWhole(t testing.TB, root cid.Cid, data []byte) FetchProgress {
	t.Helper()
	var pl progressLog
	if err := nd.x.Fetch(context.Background(), root, pl.record); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(nd.content(t, root), data) {
		t.Fatal("fetched content differs")
	}
	return pl.get()
}

func (p *progressLog) record(fp FetchProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fp.Bytes < p.last.Bytes {
		panic("progress went backwards")
	}
	p.last, p.calls = fp, p.calls+1
}

func (p *progressLog) get() FetchProgress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

// logRecorder is a slog.Handler that keeps messages with their attributes.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (l *logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	l.lines = append(l.lines, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecorder) WithGroup(string) slog.Handler      { return l }

// has reports whether a line contains every part.
func (l *logRecorder) has(parts ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}
