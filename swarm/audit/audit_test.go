package audit

import (
	"bytes"
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

const testSwarm = "audit-test"

var smallChunks = chunk.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

// holders is the replicator as the auditor sees it: this member ranked
// first, then the others; it records the failures reported.
type holders struct {
	ranked  []peer.ID
	mu      sync.Mutex
	failed  []peer.ID
	recheck int // Recheck calls: this member lost a chunk
}

func (h *holders) KnownHolders(root cid.Cid) (replicate.Holders, bool) {
	return replicate.Holders{Root: root, Holders: h.ranked}, true
}

func (h *holders) AuditFailed(_ context.Context, _ cid.Cid, p peer.ID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.failed = append(h.failed, p)
	return 1
}

func (h *holders) Recheck(cid.Cid) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recheck++
}

func (h *holders) failures() []peer.ID {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]peer.ID(nil), h.failed...)
}

// member is one host with a real store and a running auditor.
type member struct {
	a     *Auditor
	store *chunk.Store
	dir   string
	repl  *holders
}

func start(t *testing.T, n int, timeout time.Duration) []member {
	t.Helper()
	hosts := swarmtest.Hosts(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	out := make([]member, n)
	for i, h := range hosts {
		dir := t.TempDir()
		st, err := chunk.Open(dir, chunk.Options{Chunking: smallChunks})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ranked := []peer.ID{h.Host.ID()}
		for _, o := range hosts {
			if o.Host != h.Host {
				ranked = append(ranked, o.Host.ID())
			}
		}
		repl := &holders{ranked: ranked}
		a := New(Options{Host: h.Host, Store: st, Replicator: repl, Interval: time.Hour, Timeout: timeout})
		a.SetSwarm(testSwarm)
		wg.Go(func() { a.Run(ctx) })
		out[i] = member{a: a, store: st, dir: dir, repl: repl}
	}
	// The auditors end before the stores close (cleanups run last first).
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := 1; i < n; i++ {
		swarmtest.Connect(t, hosts[0].Host, hosts[i].Host)
	}
	return out
}

// put stores data in each store and returns its root and manifest.
func put(t *testing.T, data []byte, stores ...*chunk.Store) (cid.Cid, *chunk.Manifest) {
	t.Helper()
	var root cid.Cid
	var m *chunk.Manifest
	for _, st := range stores {
		r, man, err := st.Put(context.Background(), bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		root, m = r, man
	}
	if len(m.Chunks) < 3 {
		t.Fatalf("content of %d chunks; the test needs 3", len(m.Chunks))
	}
	return root, m
}

// chunkFile is where a store keeps a chunk (docs/STORE.md).
func chunkFile(dir string, id cid.Cid) string {
	h := id.Hash()
	return filepath.Join(dir, "chunks", hex.EncodeToString(h[len(h)-32:][:1]), id.String())
}

func flip(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func round(t *testing.T, m member) Stats {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m.a.Round(ctx)
	return m.a.Stats()
}

func TestAuditPasses(t *testing.T) {
	ms := start(t, 2, 5*time.Second)
	put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store, ms[1].store)
	s := round(t, ms[0])
	if s.Sent != 1 || s.Passed != 1 || s.Failed+s.Unknown != 0 || s.LastRound.IsZero() {
		t.Fatalf("stats %+v, want one passed", s)
	}
	if got := ms[1].a.Stats().Served; got != 1 {
		t.Fatalf("holder served %d challenges, want 1", got)
	}
	if f := ms[0].repl.failures(); len(f) != 0 {
		t.Fatalf("failures reported: %v", f)
	}
}

// A holder whose chunk files were deleted or flipped behind its back
// fails, drops every damaged chunk of the content (so that its repair
// fetches them) and is reported to the replicator.
func TestAuditFindsLostAndCorruptChunks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}},
		{"corrupt", flip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := start(t, 2, 5*time.Second)
			root, m := put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store, ms[1].store)
			for _, c := range m.Chunks {
				tc.damage(t, chunkFile(ms[1].dir, c.CID))
			}
			s := round(t, ms[0])
			if s.Sent != 1 || s.Failed != 1 || s.Passed+s.Unknown != 0 {
				t.Fatalf("stats %+v, want one failed", s)
			}
			if f := ms[0].repl.failures(); len(f) != 1 || f[0] != ms[1].a.host.ID() {
				t.Fatalf("failures reported %v, want the holder", f)
			}
			if got := ms[1].a.Stats().LostHere; got != 1 {
				t.Fatalf("holder counted %d lost chunks, want 1", got)
			}
			swarmtest.WaitFor(t, 10*time.Second, "the holder's sweep to drop every damaged chunk", func() bool {
				missing, err := ms[1].store.Missing(context.Background(), root)
				return err == nil && len(missing) == len(m.Chunks)
			})
			// The challenger's own copy is untouched.
			if missing, err := ms[0].store.Missing(context.Background(), root); err != nil || len(missing) != 0 {
				t.Fatalf("challenger's copy: missing %v, err %v", missing, err)
			}
		})
	}
}

// A holder that never held the content fails.
func TestAuditHolderWithoutContentFails(t *testing.T) {
	ms := start(t, 2, 5*time.Second)
	put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store)
	s := round(t, ms[0])
	if s.Failed != 1 {
		t.Fatalf("stats %+v, want one failed", s)
	}
}

// serveRaw registers, on member i's host, an audit handler of the test's
// own in place of the auditor's.
func serveRaw(t *testing.T, ms []member, i int, h network.StreamHandler) {
	ms[i].a.SetSwarm("")
	ms[i].a.host.SetStreamHandler(proto.AuditProtocolFor(testSwarm), h)
}

// A holder that answers a proof not computed over the chunk fails.
func TestAuditWrongProofFails(t *testing.T) {
	ms := start(t, 2, 5*time.Second)
	put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store, ms[1].store)
	serveRaw(t, ms, 1, func(s network.Stream) {
		defer s.Close()
		c := proto.NewCodec(s)
		req, err := p2pstream.RecvAs[*proto.AuditRequest](c)
		if err != nil {
			s.Reset()
			return
		}
		// A proof over other bytes: what a holder without the chunk could
		// make without the data.
		_ = p2pstream.Send(c, &proto.AuditResponse{ID: req.ID, State: proto.AuditHeld, Proof: proto.AuditProof(req.Nonce, req.Chunk.Bytes())})
		_, _ = c.Recv()
	})
	s := round(t, ms[0])
	if s.Sent != 1 || s.Failed != 1 {
		t.Fatalf("stats %+v, want one failed", s)
	}
	if f := ms[0].repl.failures(); len(f) != 1 {
		t.Fatalf("failures reported %v, want one", f)
	}
}

// A holder that does not answer in time is unknown, not failed, and is
// not reported.
func TestAuditTimeoutIsUnknown(t *testing.T) {
	ms := start(t, 2, 300*time.Millisecond)
	put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store, ms[1].store)
	got := make(chan struct{}, 1)
	serveRaw(t, ms, 1, func(s network.Stream) {
		c := proto.NewCodec(s)
		if _, err := p2pstream.RecvAs[*proto.AuditRequest](c); err == nil {
			got <- struct{}{}
		}
		_ = s.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Recv() // silent until the challenger gives up
		s.Reset()
	})
	s := round(t, ms[0])
	if s.Sent != 1 || s.Unknown != 1 || s.Failed+s.Passed != 0 {
		t.Fatalf("stats %+v, want one unknown", s)
	}
	select {
	case <-got:
	default:
		t.Fatal("the holder never received the challenge")
	}
	if f := ms[0].repl.failures(); len(f) != 0 {
		t.Fatalf("a slow holder was reported failed: %v", f)
	}
}

// The daily byte budget stops challenges once spent.
func TestAuditByteBudget(t *testing.T) {
	ms := start(t, 2, 5*time.Second)
	ms[0].a.bytesPerDay = 1 // less than any chunk
	put(t, swarmtest.RandomContent(t, 200<<10), ms[0].store, ms[1].store)
	if s := round(t, ms[0]); s.Sent != 0 || s.BytesToday != 0 {
		t.Fatalf("stats %+v, want nothing sent", s)
	}
}
