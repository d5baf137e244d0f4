package audit

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// definition is the adopted swarm as the replicator reads it.
type definition struct{ def *rules.Definition }

func (d definition) Current() *rules.Definition { return d.def }
func (definition) LastSeen(peer.ID) time.Time   { return time.Time{} }

// Alive says every member is alive: the test's hosts stay up.
func (definition) Alive(peer.ID) (bool, time.Time)             { return true, time.Now() }
func (definition) Returned(peer.ID) (time.Time, time.Duration) { return time.Time{}, 0 }
func (definition) Reconnecting() time.Duration                 { return 0 }

// fullMember is a member with the real exchange, replicator and auditor.
type fullMember struct {
	id    peer.ID
	store *chunk.Store
	dir   string
	repl  *replicate.Replicator
	a     *Auditor
}

// With the real replicator: a holder that lost its chunks fails the audit,
// the content is placed on the third member, and the holder fetches its
// lost chunks back itself.
func TestAuditFailureReplacesThroughReplicator(t *testing.T) {
	hosts := swarmtest.Hosts(t, 3)
	var ids []peer.ID
	def := &rules.Definition{Swarm: "t", Version: 1, Replication: rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: time.Hour}}
	for _, h := range hosts {
		ids = append(ids, h.Host.ID())
		def.Members = append(def.Members, rules.Member{Name: h.Host.ID().String(), Peer: rules.PeerID(h.Host.ID()), Role: rules.RoleStorage})
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var loops []func()
	log := slog.New(slog.DiscardHandler)
	ms := make([]fullMember, 3)
	for i, h := range hosts {
		dir := t.TempDir()
		st, err := chunk.Open(dir, chunk.Options{Chunking: smallChunks})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		x := exchange.New(exchange.Options{Host: h.Host, Store: st, Logger: log, Members: func() []peer.ID { return ids }})
		x.SetSwarm(testSwarm)
		r := replicate.New(replicate.Options{Host: h.Host, Store: st, Exchange: x, Members: definition{def}, Logger: log, Interval: 200 * time.Millisecond})
		r.SetSwarm(testSwarm)
		a := New(Options{Host: h.Host, Store: st, Replicator: r, Logger: log, Interval: time.Hour})
		a.SetSwarm(testSwarm)
		loops = append(loops, func() { x.Run(ctx) }, func() { r.Run(ctx) }, func() { a.Run(ctx) })
		ms[i] = fullMember{id: h.Host.ID(), store: st, dir: dir, repl: r, a: a}
	}
	// The membership would reconnect a member the survey dropped (it
	// disconnects one that is slow to answer); here the test does.
	reconnect := func() {
		for _, a := range hosts {
			for _, b := range hosts {
				if a.Host != b.Host {
					_ = a.Host.Connect(ctx, peer.AddrInfo{ID: b.Host.ID(), Addrs: b.Host.Addrs()})
				}
			}
		}
	}
	reconnect()

	// Two holders before any round runs (else a round would place a third
	// copy), in rank order as the replicator sees them.
	data := swarmtest.RandomContent(t, 200<<10)
	root, m := put(t, data, ms[0].store, ms[1].store)
	// The loops end before the stores close (cleanups run last first).
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, f := range loops {
		wg.Go(f)
	}
	var ranked []peer.ID
	swarmtest.WaitFor(t, 60*time.Second, "both holders known to the replicator", func() bool {
		reconnect()
		h, ok := ms[0].repl.KnownHolders(root)
		ranked = h.Holders
		return ok && len(h.Holders) == 2
	})
	auditor, victim, third := byID(ms, ranked[0]), byID(ms, ranked[1]), byID(ms, ids[2])
	for _, c := range m.Chunks[1:] {
		if err := os.Remove(chunkFile(victim.dir, c.CID)); err != nil {
			t.Fatal(err)
		}
	}
	flip(t, chunkFile(victim.dir, m.Chunks[0].CID))

	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	auditor.a.Round(rctx)
	if s := auditor.a.Stats(); s.Failed != 1 {
		t.Fatalf("auditor stats %+v, want one failed", s)
	}
	complete := func(st *chunk.Store) bool {
		missing, err := st.Missing(context.Background(), root)
		return err == nil && len(missing) == 0
	}
	swarmtest.WaitFor(t, 60*time.Second, "a copy placed on the third member", func() bool { reconnect(); return complete(third.store) })
	swarmtest.WaitFor(t, 60*time.Second, "the damaged holder whole again", func() bool { reconnect(); return complete(victim.store) })
	rep, err := victim.store.Fsck(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) > 0 || len(rep.Incomplete) > 0 {
		t.Fatalf("the damaged holder's store after repair: %+v", rep)
	}
}

func byID(ms []fullMember, id peer.ID) fullMember {
	for _, m := range ms {
		if m.id == id {
			return m
		}
	}
	return fullMember{}
}
