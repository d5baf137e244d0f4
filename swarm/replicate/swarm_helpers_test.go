package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/internal/atomicfile"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// An in-process swarm for the repair tests: real libp2p hosts on loopback,
// real stores, a real signed definition adopted by real memberships (which
// ping each other), real exchanges and replicators.

// node is one member of a test swarm.
type node struct {
	h     swarmtest.Member
	store *chunk.Store
	m     *membership.Membership
	x     *exchange.Exchange
	r     *Replicator
	stop  context.CancelFunc
	wg    sync.WaitGroup
	opts  Options            // the replicator's, for restartReplicator
	ctx   context.Context    // start's
	rstop context.CancelFunc // the replicator's Run alone
	rwg   sync.WaitGroup
	// delay, when set, stalls every read of a served exchange stream
	// that long: a member whose answers are slow.
	delay atomic.Int64
	// signer is the swarm's admin key (setRules).
	signer *rules.Signer
}

// putAsDaemon stores a content under the adopted rules and seeds it, as
// the daemon's put does (daemon.putContent): the replicator's Put.
func (nd *node) putAsDaemon(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, error) {
	defer nd.r.BeginPut()()
	var root cid.Cid
	var err error
	if def := nd.m.Current(); def != nil && def.Replication.Coded(size) {
		e := def.Replication.Erasure
		root, _, err = nd.store.PutCoded(ctx, r, size, key, e.Data, e.Parity)
	} else {
		root, _, err = nd.store.Put(ctx, r, size, key)
	}
	if err != nil {
		return cid.Undef, err
	}
	if _, err := nd.r.Seed(ctx, root, nil); err != nil {
		return cid.Undef, err
	}
	return root, nil
}

// setRules signs the next version of the definition with edit applied to
// its replication policy and offers it to every node.
func setRules(t *testing.T, nodes []*node, edit func(*rules.Replication)) {
	t.Helper()
	cur := nodes[0].m.Current()
	next := cur.Next()
	edit(&next.Replication)
	signed, err := nodes[0].signer.Sign(next, cur)
	if err != nil {
		t.Fatal(err)
	}
	for _, nd := range nodes {
		if nd.m.Current().Version >= next.Version {
			continue // spread to it already
		}
		if _, err := nd.m.Offer(t.Context(), signed); err != nil && nd.m.Current().Version < next.Version {
			t.Fatalf("offering version %d: %v", next.Version, err)
		}
	}
}

// swarmConfig shapes a test swarm.
type swarmConfig struct {
	n           int
	rep         rules.Replication
	interval    time.Duration
	page        int
	pageTimeout time.Duration
	placements  int
	recheck     time.Duration
	durable     bool          // each replicator keeps its repair state in a file
	ping        time.Duration // the membership's ping interval; 200 ms when zero
	recode      bool          // each replicator re-codes, putting as putAsDaemon does
}

// testSwarm makes cfg.n members of a new swarm; none runs yet (start).
func testSwarm(t *testing.T, cfg swarmConfig) []*node {
	t.Helper()
	hs := swarmtest.Hosts(t, cfg.n)
	armored, err := rules.GenerateKey("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := rules.ReadSigner(bytes.NewReader(armored), nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := rules.Create("repair-test", signer, cfg.rep, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range hs {
		if err := def.AddMember(rules.Member{Name: fmt.Sprintf("m%d", i), Peer: rules.PeerID(h.Host.ID()), Addrs: h.Host.Addrs(), Role: rules.RoleStorage}); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := signer.Sign(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*node, cfg.n)
	for i, h := range hs {
		st, err := chunk.Open(t.TempDir(), chunk.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		nd := &node{h: h, store: st, signer: signer}
		log := nodeLogger(t, i)
		ping := cfg.ping
		if ping <= 0 {
			ping = 200 * time.Millisecond
		}
		nd.m = membership.New(h.Host, h.Gater, membership.Options{Logger: log, PingInterval: ping})
		nd.x = exchange.New(exchange.Options{Host: h.Host, Store: st, Logger: log, Members: func() []peer.ID {
			var ps []peer.ID
			if d := nd.m.Current(); d != nil {
				for _, p := range d.Peers() {
					ps = append(ps, peer.ID(p))
				}
			}
			return ps
		}})
		nd.opts = Options{Host: h.Host, Store: st, Exchange: nd.x, Members: nd.m, Logger: log,
			Interval: cfg.interval, SurveyPage: cfg.page, SurveyPageTimeout: cfg.pageTimeout, Placements: cfg.placements, Recheck: cfg.recheck}
		if cfg.recode {
			nd.opts.Put, nd.opts.TempDir = nd.putAsDaemon, t.TempDir()
		}
		if cfg.durable {
			path := filepath.Join(t.TempDir(), "repair")
			nd.opts.LoadRepairState = func() ([]byte, error) {
				b, err := os.ReadFile(path)
				if errors.Is(err, fs.ErrNotExist) {
					return nil, nil
				}
				return b, err
			}
			nd.opts.SaveRepairState = func(b []byte) error { return atomicfile.WriteFile(path, b, 0o600) }
		}
		nd.r = New(nd.opts)
		nd.m.OnAdopt(func(d *rules.Definition) {
			id := ""
			if d != nil {
				id = d.ID.String()
			}
			nd.x.SetSwarm(id)
			nd.r.SetSwarm(id)
			if id != "" {
				nd.slowDown()
			}
		})
		if _, err := nd.m.Join(t.Context(), signed); err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	return nodes
}

// nodeLogger is member i's logger: discarded, or, when
// ANNEX_SWARM_REPLICATE_LOGS names a directory, debug lines in a file
// there (test name and member), to read a failure that came under load.
func nodeLogger(t *testing.T, i int) *slog.Logger {
	dir := os.Getenv("ANNEX_SWARM_REPLICATE_LOGS")
	if dir == "" {
		return slog.New(slog.DiscardHandler)
	}
	name := fmt.Sprintf("%s-%d-m%d.log", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano(), i)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})).With("member", i)
}

// slowDown wraps the exchange's stream handler so that every read of a
// served stream first waits nd.delay: the real serving side, answering late.
func (nd *node) slowDown() {
	pid := nd.x.Protocol()
	serve := nd.x.HandleStream
	nd.h.Host.SetStreamHandler(pid, func(s network.Stream) {
		serve(&slowStream{Stream: s, delay: &nd.delay})
	})
}

// slowStream delays each read by *delay and reads at most a few requests
// at a time, so that a delay paces the answers.
type slowStream struct {
	network.Stream
	delay *atomic.Int64
}

func (s *slowStream) Read(b []byte) (int, error) {
	if d := time.Duration(s.delay.Load()); d > 0 {
		time.Sleep(d)
		b = b[:min(len(b), 64)]
	}
	return s.Stream.Read(b)
}

// start runs the node's membership, exchange and replicator until the test
// ends or stopNode.
func (nd *node) start(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	nd.stop = cancel
	nd.wg.Go(func() { nd.m.Run(ctx) })
	nd.wg.Go(func() { nd.x.Run(ctx) })
	nd.ctx = ctx
	nd.runReplicator()
	t.Cleanup(nd.stopNode)
}

// runReplicator runs nd.r until start's context ends or restartReplicator.
func (nd *node) runReplicator() {
	rctx, rcancel := context.WithCancel(nd.ctx)
	nd.rstop = rcancel
	r := nd.r
	nd.rwg.Go(func() { r.Run(rctx) })
}

// restartReplicator stops the node's replicator and starts a new one with
// the same options (a daemon restarted, its host and store aside).
func (nd *node) restartReplicator() {
	nd.rstop()
	nd.rwg.Wait()
	nd.r = New(nd.opts)
	nd.r.SetSwarm(nd.m.Current().ID.String())
	nd.runReplicator()
}

// stopNode stops what start started and waits for it.
func (nd *node) stopNode() {
	if nd.stop != nil {
		nd.stop()
	}
	nd.wg.Wait()
	nd.rwg.Wait()
}

// putAll stores the same n small contents in each of nodes (the store's
// real write path) and returns their roots.
func putAll(t *testing.T, n int, nodes ...*node) []cid.Cid {
	t.Helper()
	var roots []cid.Cid
	for i := range n {
		data := fmt.Appendf(nil, "content %d of a repair test", i)
		var root cid.Cid
		for _, nd := range nodes {
			r, _, err := nd.store.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
			if err != nil {
				t.Fatal(err)
			}
			root = r
		}
		roots = append(roots, root)
	}
	return roots
}

// rounds waits until nd has finished k more repair rounds.
func (nd *node) rounds(t *testing.T, k int, d time.Duration) {
	t.Helper()
	for range k {
		last := nd.r.Summary().LastRound
		swarmtest.WaitFor(t, d, "a repair round", func() bool { return nd.r.Summary().LastRound.After(last) })
	}
}

// connectAll connects every pair of nodes.
func connectAll(t *testing.T, nodes []*node) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			swarmtest.Connect(t, a.h.Host, b.h.Host)
		}
	}
}

// holds reports whether nd holds root in full.
func (nd *node) holds(root cid.Cid) bool {
	missing, err := nd.store.Missing(context.Background(), root)
	return err == nil && len(missing) == 0
}
