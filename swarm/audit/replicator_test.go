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
	t.Cleanup(func() { cancel(); wg.Wait() })
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
		wg.Go(func() { x.Run(ctx) })
		wg.Go(func() { r.Run(ctx) })
		wg.Go(func() { a.Run(ctx) })
		ms[i] = fullMember{id: h.Host.ID(), store: st, dir: dir, repl: r, a: a}
	}
	swarmtest.Connect(t, hosts[0].Host, hosts[1].Host, hosts[2].Host)
	swarmtest.Connect(t, hosts[1].Host, hosts[2].Host)

	data := swarmtest.RandomContent(t, 200<<10)
	// Two holders, in rank order as the replicator sees them.
	root, m := put(t, data, ms[0].store, ms[1].store)
	var ranked []peer.ID
	swarmtest.WaitFor(t, 10*time.Second, "both holders known to the replicator", func() bool {
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
	swarmtest.WaitFor(t, 20*time.Second, "a copy placed on the third member", func() bool { return complete(third.store) })
	swarmtest.WaitFor(t, 20*time.Second, "the damaged holder whole again", func() bool { return complete(victim.store) })
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
