package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// In-process placements with real members: libp2p hosts on loopback,
// real chunk stores, exchanges and replicators. The definition is handed
// to them as it is (fixedMembers), not signed and spread.

const placeTestSwarm = "place-test"

// placeTestStall is the stall bound of the replicators in these tests.
const placeTestStall = 5 * time.Second

// fixedMembers is a Membership with one fixed definition.
type fixedMembers struct{ def *rules.Definition }

func (m fixedMembers) Current() *rules.Definition { return m.def }
func (m fixedMembers) LastSeen(peer.ID) time.Time { return time.Now() }

// Alive says every member is alive: the test's hosts stay up.
func (m fixedMembers) Alive(peer.ID) (bool, time.Time)             { return true, time.Now() }
func (m fixedMembers) Returned(peer.ID) (time.Time, time.Duration) { return time.Time{}, 0 }
func (m fixedMembers) Reconnecting() time.Duration                 { return 0 }

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// placeMember is one in-process member.
type placeMember struct {
	name string
	id   peer.ID
	st   *chunk.Store
	x    *exchange.Exchange
	r    *Replicator
	logs *syncBuffer
	// stuck replaces the member's replication handler with one that reads
	// the request and then neither reads nor answers.
	stuck func()
}

// placeSwarm starts one client member (index 0) and n storage members,
// all connected, with copies and copies_min as given. The repair round
// runs once an hour: these tests watch placement alone.
func placeSwarm(t *testing.T, n, copies, copiesMin int) []*placeMember {
	t.Helper()
	return placeSwarmStall(t, n, copies, copiesMin, placeTestStall)
}

// placeSwarmStall is placeSwarm with the placers' stall bound as given.
func placeSwarmStall(t *testing.T, n, copies, copiesMin int, stall time.Duration) []*placeMember {
	t.Helper()
	hs := swarmtest.Hosts(t, n+1)
	def := &rules.Definition{Swarm: placeTestSwarm, Version: 1,
		Replication: rules.Replication{Copies: copies, CopiesMin: copiesMin, RepairAfter: time.Hour}}
	for i, h := range hs {
		role, name := rules.RoleStorage, fmt.Sprintf("s%d", i)
		if i == 0 {
			role, name = rules.RoleClient, "laptop"
		}
		def.Members = append(def.Members, rules.Member{Name: name, Peer: rules.PeerID(h.Host.ID()), Role: role})
	}
	var ids []peer.ID
	for _, h := range hs {
		ids = append(ids, h.Host.ID())
	}
	out := make([]*placeMember, len(hs))
	for i, h := range hs {
		st, err := chunk.Open(t.TempDir(), chunk.Options{Chunking: smallChunks})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		others := slices.DeleteFunc(slices.Clone(ids), func(p peer.ID) bool { return p == h.Host.ID() })
		x := exchange.New(exchange.Options{Host: h.Host, Store: st, Logger: log,
			Members: func() []peer.ID { return others }})
		x.SetSwarm(placeTestSwarm)
		r := New(Options{Host: h.Host, Store: st, Exchange: x, Members: fixedMembers{def}, Logger: log,
			Interval: time.Hour, PlaceStall: stall})
		r.SetSwarm(placeTestSwarm)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { x.Run(ctx) })
		wg.Go(func() { r.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait(); st.Close() })
		host := h.Host
		out[i] = &placeMember{name: def.Members[i].Name, id: host.ID(), st: st, x: x, r: r, logs: logs,
			stuck: func() {
				host.SetStreamHandler(proto.ReplicationProtocolFor(placeTestSwarm), func(s network.Stream) {
					c := proto.NewCodec(s)
					_, _ = c.Recv()
					// Neither read nor answer; the stream stays open until
					// the placer resets it or the test ends.
					t.Cleanup(func() { s.Reset() })
				})
			}}
	}
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			swarmtest.Connect(t, hs[i].Host, hs[j].Host)
		}
	}
	return out
}

// putOn stores size random bytes in m's store and returns the root and
// the storage members in the order placement tries them.
func putOn(t *testing.T, m *placeMember, ms []*placeMember, size int) (cid.Cid, []*placeMember) {
	t.Helper()
	data := swarmtest.RandomContent(t, size)
	root, _, err := m.st.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	pl, ok := m.r.currentPolicy()
	if !ok {
		t.Fatal("no policy")
	}
	ranked := order(root, pl.def, pl.storagePeers(), nil)
	var out []*placeMember
	for _, p := range ranked {
		for _, o := range ms {
			if o.id == p {
				out = append(out, o)
			}
		}
	}
	return root, out
}

// allLogs is every member's log, for a failure's message.
func allLogs(ms []*placeMember) string {
	var b bytes.Buffer
	for _, m := range ms {
		fmt.Fprintf(&b, "--- %s (%s):\n%s", m.name, m.id, m.logs.String())
	}
	return b.String()
}

// holds reports whether m holds a complete copy of root.
func holds(t *testing.T, m *placeMember, root cid.Cid) bool {
	missing, err := m.st.Missing(t.Context(), root)
	return err == nil && len(missing) == 0
}

// seedPastStuckFirst puts a 1 MiB content on ms[0], makes the first member
// in its placement order stuck (it takes requests and answers nothing) and
// seeds the content from ms[0], bounded by a minute. It returns the
// content, the members in placement order, and Seed's copies, duration and
// error.
func seedPastStuckFirst(t *testing.T, ms []*placeMember) (root cid.Cid, ranked []*placeMember, n int, took time.Duration, err error) {
	t.Helper()
	root, ranked = putOn(t, ms[0], ms, 1<<20)
	ranked[0].stuck()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	n, err = ms[0].r.Seed(ctx, root, nil)
	return root, ranked, n, time.Since(start), err
}

// TestPlacementAbandonsStalledHolder: the first member in placement order
// takes the request and then neither reads nor answers. The placer gives
// up on it after the stall bound and the next member takes its copy; Seed
// returns with copies_min copies, and the stuck member is not among them.
func TestPlacementAbandonsStalledHolder(t *testing.T) {
	ms := placeSwarm(t, 3, 2, 2)
	laptop := ms[0]
	root, ranked, n, took, err := seedPastStuckFirst(t, ms)
	stuck := ranked[0]
	if err != nil || n != 2 {
		t.Fatalf("Seed: %d copies, %v\n%s", n, err, allLogs(ms))
	}
	// The bound: the stall bound, plus the time the copies take.
	if took > readyWait {
		t.Errorf("Seed took %v with a stuck member; the stall bound is %v", took, placeTestStall)
	}
	for _, m := range ranked[1:] {
		if !holds(t, m, root) {
			t.Errorf("%s, a healthy member, holds no copy", m.name)
		}
	}
	if holds(t, stuck, root) {
		t.Error("the stuck member holds a copy")
	}
	if !bytes.Contains([]byte(laptop.logs.String()), []byte(ErrStalled.Error())) {
		t.Errorf("the laptop's log does not say the placement stalled:\n%s", laptop.logs.String())
	}
}

// TestSeedDoesNotWaitForAFrozenFirstHolder: copies 3, copies_min 1 from a
// client, so the first new holder in placement order would be fed alone
// and the others follow from it. That member is frozen (it takes the
// request and answers nothing; the stall bound is 2 minutes): the fetches
// start once the others are Ready, one of them is the first holder, and
// Seed returns with a copy long before the 30 s Ready bound, let alone
// the stall bound.
func TestSeedDoesNotWaitForAFrozenFirstHolder(t *testing.T) {
	ms := placeSwarmStall(t, 3, 3, 1, 2*time.Minute)
	root, ranked, n, took, err := seedPastStuckFirst(t, ms)
	if err != nil || n < 1 {
		t.Fatalf("Seed: %d copies, %v\n%s", n, err, allLogs(ms))
	}
	if took >= readyWait {
		t.Fatalf("Seed took %v with the first holder frozen: it waited for it", took)
	}
	t.Logf("Seed returned after %v with %d copies, the first holder in placement order frozen", took, n)
	swarmtest.WaitFor(t, 30*time.Second, "both healthy members hold a copy", func() bool {
		return holds(t, ranked[1], root) && holds(t, ranked[2], root)
	})
	if holds(t, ranked[0], root) {
		t.Error("the frozen member holds a copy")
	}
}

// TestPlacementHolderOutOfSpaceReleasesSeedChunks: three storage members,
// copies 2, super-seeding. The first in placement order runs out of space
// in the middle of its fetch (its store's limit drops under what it
// holds). It answers NoSpace and drops its partial copy; the placer
// releases the chunks it had served to it - the gate's own time bound is
// set to an hour here, so only the release can free them - and the other
// members complete. The full member is then skipped and named.
func TestPlacementHolderOutOfSpaceReleasesSeedChunks(t *testing.T) {
	ms := placeSwarm(t, 3, 2, 2)
	laptop := ms[0]
	laptop.r.seed.passOn = time.Hour
	root, ranked := putOn(t, laptop, ms, 4<<20)
	full := ranked[0]
	// Slow the full member down so that it is caught mid-transfer.
	full.x.SetLimits(0, 512<<10)

	var wg sync.WaitGroup
	wg.Go(func() {
		swarmtest.WaitFor(t, 30*time.Second, "the full member's first chunks", func() bool {
			return full.st.Stats().Used > 0
		})
		full.st.SetLimit(full.st.Stats().Used + 1)
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := laptop.r.Seed(ctx, root, nil)
	wg.Wait()
	if err != nil || n != 2 {
		t.Fatalf("Seed: %d copies, %v\n%s", n, err, allLogs(ms))
	}
	for _, m := range ranked[1:] {
		if !holds(t, m, root) {
			t.Errorf("%s, a member with room, holds no copy", m.name)
		}
	}
	if _, err := full.st.Manifest(t.Context(), root); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("the full member kept its partial copy: %v", err)
	}
	if got := laptop.r.FullMembers(); !slices.Equal(got, []string{full.name}) {
		t.Errorf("FullMembers = %v, want [%s]", got, full.name)
	}
	pl, _ := laptop.r.currentPolicy()
	if cands := laptop.r.candidates(pl, root, nil, nil); slices.Contains(cands, full.id) {
		t.Error("the full member is still a placement candidate")
	}
	if !bytes.Contains([]byte(full.logs.String()), []byte("partial copy dropped")) {
		t.Errorf("the full member's log does not say it dropped its partial copy:\n%s", full.logs.String())
	}
}

// TestSeedFailsNamingTheMembers: every storage member is full (limit one
// byte): Seed ends at once with an error that names each and says why.
func TestSeedFailsNamingTheMembers(t *testing.T) {
	ms := placeSwarm(t, 2, 2, 2)
	for _, m := range ms[1:] {
		m.st.SetLimit(1)
	}
	root, _ := putOn(t, ms[0], ms, 512<<10)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := ms[0].r.Seed(ctx, root, nil)
	if !errors.Is(err, ErrBelowMin) || n != 0 {
		t.Fatalf("Seed with every member full: %d copies, %v", n, err)
	}
	for _, m := range ms[1:] {
		if want := m.name + ": no room"; !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}

// TestSuperSeedPassOnBound: a chunk served to one member is refused to the
// others until the bound passes, and served to them after it; release
// frees a failed holder's chunks at once.
func TestSuperSeedPassOnBound(t *testing.T) {
	hs := swarmtest.Hosts(t, 4)
	swarmtest.Connect(t, hs[0].Host, hs[1].Host, hs[2].Host, hs[3].Host)
	s := newSuperSeed(hs[0].Host)
	now := time.Now()
	s.nowFunc = func() time.Time { return now }
	st, err := chunk.Open(t.TempDir(), chunk.Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := swarmtest.RandomContent(t, 256<<10)
	_, m, err := st.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	s.add(m)
	a, b, c := hs[1].Host.ID(), hs[2].Host.ID(), hs[3].Host.ID()
	c0, c1 := m.Chunks[0].CID, m.Chunks[1].CID
	if !s.allow(a, c0) || !s.allow(a, c1) {
		t.Fatal("first requester refused")
	}
	now = now.Add(s.passOn - time.Second)
	if s.allow(b, c0) {
		t.Fatal("served to another member within the pass-on bound")
	}
	now = now.Add(time.Second)
	if !s.allow(b, c0) {
		t.Fatal("refused after the pass-on bound")
	}
	if got := s.release(m, a, false); got != 2 {
		t.Fatalf("release freed %d chunks, want 2", got)
	}
	if !s.allow(c, c1) {
		t.Fatal("a released chunk was refused")
	}
	if s.allow(b, c1) {
		t.Fatal("a released chunk, served again, was not assigned to its new holder")
	}
}

// TestNoRoomOnlyForLackOfRoom: a content short of copies because the swarm
// has too few members is not counted no_room (the status said "no storage
// member has room" while every member had room); one short because
// members refused for room is, until it is back at its target.
func TestNoRoomOnlyForLackOfRoom(t *testing.T) {
	ms := placeSwarm(t, 1, 2, 2)
	root, _ := putOn(t, ms[0], ms, 512<<10)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	n, err := ms[0].r.Seed(ctx, root, nil)
	if !errors.Is(err, ErrBelowMin) || n != 1 {
		t.Fatalf("Seed with one storage member for copies 2: %d copies, %v", n, err)
	}
	if bytes.Contains([]byte(err.Error()), []byte("no room")) {
		t.Errorf("too few members reported as no room: %v", err)
	}
	k := root.KeyString()
	if ms[0].r.stillNoRoom(k, belowTarget) {
		t.Error("a content short of members is counted no_room")
	}
	ms[0].r.setNoRoom(root, true)
	if !ms[0].r.stillNoRoom(k, belowMin) {
		t.Error("a content short of room is not counted no_room")
	}
	if ms[0].r.stillNoRoom(k, atTarget) || ms[0].r.stillNoRoom(k, belowTarget) {
		t.Error("no_room is not cleared once the content is at its target")
	}
}

// TestSuperSeedFirstHolders: with a first holder (copies_min first), the
// uploader refuses every chunk to the followers while the first holder is
// connected, past the pass-on bound too, and serves the first holder all
// of them; once it is released or gone, the followers super-seed among
// themselves as before.
func TestSuperSeedFirstHolders(t *testing.T) {
	hs := swarmtest.Hosts(t, 4)
	swarmtest.Connect(t, hs[0].Host, hs[1].Host, hs[2].Host, hs[3].Host)
	st, err := chunk.Open(t.TempDir(), chunk.Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := swarmtest.RandomContent(t, 256<<10)
	_, m, err := st.Put(t.Context(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	a, b, c := hs[1].Host.ID(), hs[2].Host.ID(), hs[3].Host.ID()
	c0, c1 := m.Chunks[0].CID, m.Chunks[1].CID

	s := newSuperSeed(hs[0].Host)
	now := time.Now()
	s.nowFunc = func() time.Time { return now }
	s.add(m, a)
	if s.allow(b, c0) {
		t.Fatal("a follower was served a chunk the first holder has not had yet")
	}
	if !s.allow(a, c0) || !s.allow(a, c1) || !s.allow(a, c0) {
		t.Fatal("the first holder was refused")
	}
	now = now.Add(s.passOn + time.Second)
	if s.allow(b, c0) || s.allow(c, c1) {
		t.Fatal("a follower was served past the pass-on bound while the first holder is connected")
	}
	if got := s.release(m, a, true); got != 2 {
		t.Fatalf("release freed %d chunks, want 2", got)
	}
	if !s.allow(b, c0) {
		t.Fatal("a follower was refused after the first holder was released")
	}
	if s.allow(c, c0) {
		t.Fatal("without a first holder, a chunk served to one follower was served to another")
	}
	s.remove(m)
	if !s.allow(c, c0) {
		t.Fatal("a chunk no longer seeded was refused")
	}

	// A first holder that disconnects no longer holds the followers back.
	s2 := newSuperSeed(hs[0].Host)
	s2.add(m, a)
	if s2.allow(b, c1) {
		t.Fatal("a follower was served while the first holder is connected")
	}
	if err := hs[0].Host.Network().ClosePeer(a); err != nil {
		t.Fatal(err)
	}
	swarmtest.WaitFor(t, 10*time.Second, "disconnected", func() bool { return len(hs[0].Host.Network().ConnsToPeer(a)) == 0 })
	if !s2.allow(b, c1) {
		t.Fatal("a follower was refused after the first holder went away")
	}
	s2.remove(m, a)
	if len(s2.chunks) != 0 {
		t.Fatalf("%d chunks still seeded after remove", len(s2.chunks))
	}
}
