package replicate

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multihash"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// smallChunks make a few hundred KiB of content several chunks.
var smallChunks = chunk.Params{Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}

func testRoot(t testing.TB, s string) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte(s), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(chunk.CodecCBOR, h)
}

func testPeer(t testing.TB) (peer.ID, crypto.PrivKey) {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id, k
}

func TestRankIsDeterministicAndSpreads(t *testing.T) {
	var ps []peer.ID
	for range 6 {
		id, _ := testPeer(t)
		ps = append(ps, id)
	}
	first := map[peer.ID]int{}
	for i := range 60 {
		root := testRoot(t, string(rune('a'+i)))
		a := rank(root, slices.Clone(ps))
		rev := slices.Clone(ps)
		slices.Reverse(rev)
		if b := rank(root, rev); !slices.Equal(a, b) {
			t.Fatalf("rank depends on input order: %v vs %v", a, b)
		}
		first[a[0]]++
	}
	if len(first) < 4 {
		t.Errorf("60 contents ranked only %d distinct members first: %v", len(first), first)
	}
}

func TestOrderSpreadsAcrossGroups(t *testing.T) {
	var members []rules.Member
	var ids []peer.ID
	for i, g := range []string{"home", "home", "home", "office"} {
		id, _ := testPeer(t)
		ids = append(ids, id)
		members = append(members, rules.Member{Name: string(rune('a' + i)), Peer: rules.PeerID(id), Role: rules.RoleStorage, Groups: []string{g}})
	}
	def := &rules.Definition{Members: members}
	office := ids[3]
	for i := range 20 {
		root := testRoot(t, string(rune('A'+i)))
		got := order(root, def, ids, nil)
		if len(got) != len(ids) {
			t.Fatalf("order lost members: %v", got)
		}
		if !slices.Contains(got[:2], office) {
			t.Fatalf("the first two picks %v do not cover both groups", got[:2])
		}
		// With a holder in "office" already, plain rank order applies.
		if plain := rank(root, slices.Clone(ids[:3])); !slices.Equal(order(root, def, ids[:3], []peer.ID{office}), plain) {
			t.Fatalf("order with groups covered differs from rank")
		}
	}
}

func TestSuperSeedServesEachChunkOnce(t *testing.T) {
	hs := swarmtest.Hosts(t, 3)
	swarmtest.Connect(t, hs[0].Host, hs[1].Host, hs[2].Host)
	s := newSuperSeed(hs[0].Host)
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
	c := m.Chunks[0].CID
	a, b := hs[1].Host.ID(), hs[2].Host.ID()
	if !s.allow(b, c) {
		t.Fatal("a chunk not being seeded was refused")
	}
	s.add(m)
	if !s.allow(a, c) || !s.allow(a, c) {
		t.Fatal("first requester refused")
	}
	if s.allow(b, c) {
		t.Fatal("a chunk already served to a connected member was served again")
	}
	if err := hs[0].Host.Network().ClosePeer(a); err != nil {
		t.Fatal(err)
	}
	swarmtest.WaitFor(t, 10*time.Second, "disconnected", func() bool { return len(hs[0].Host.Network().ConnsToPeer(a)) == 0 })
	if !s.allow(b, c) {
		t.Fatal("a chunk whose receiver went away is not served again")
	}
	s.remove(m)
	if !s.allow(a, c) {
		t.Fatal("a chunk no longer seeded was refused")
	}
}

func signedRemoval(t testing.TB, k crypto.PrivKey, id peer.ID, root cid.Cid, at int64, restore bool) *proto.Removal {
	t.Helper()
	r := &proto.Removal{Root: root, Issuer: []byte(id), Time: at, Restore: restore}
	sig, err := k.Sign(r.SigningBytes())
	if err != nil {
		t.Fatal(err)
	}
	r.Sig = sig
	return r
}

func TestRemovalVerification(t *testing.T) {
	id, k := testPeer(t)
	stranger, sk := testPeer(t)
	pl := policy{def: &rules.Definition{Members: []rules.Member{{Name: "m", Peer: rules.PeerID(id), Role: rules.RoleStorage}}}}
	root := testRoot(t, "x")
	if err := verifyRemoval(pl, signedRemoval(t, k, id, root, 5, false)); err != nil {
		t.Fatalf("a member's record refused: %v", err)
	}
	tampered := signedRemoval(t, k, id, root, 5, false)
	tampered.Time = 6
	forged := signedRemoval(t, sk, id, root, 5, false) // stranger's key, member's name
	foreign := signedRemoval(t, sk, stranger, root, 5, false)
	for name, r := range map[string]*proto.Removal{"tampered": tampered, "forged": forged, "non-member": foreign} {
		if err := verifyRemoval(pl, r); !errors.Is(err, ErrBadRemoval) {
			t.Errorf("%s record: got %v, want ErrBadRemoval", name, err)
		}
	}
}

func TestRemovalsNewestWinsBoundedAndRoundTrip(t *testing.T) {
	id, k := testPeer(t)
	tb := newRemovals()
	root := testRoot(t, "r")
	if !tb.put(signedRemoval(t, k, id, root, 10, false)) || !tb.removed(root) {
		t.Fatal("removal not kept")
	}
	if tb.put(signedRemoval(t, k, id, root, 9, true)) || !tb.removed(root) {
		t.Fatal("an older restore won")
	}
	if !tb.put(signedRemoval(t, k, id, root, 11, true)) || tb.removed(root) {
		t.Fatal("a newer restore lost")
	}
	for i := range MaxRemovals + 10 {
		tb.put(signedRemoval(t, k, id, testRoot(t, string(rune(i+1000))), int64(100+i), false))
	}
	if n := len(tb.recs); n != MaxRemovals {
		t.Fatalf("%d records kept, bound %d", n, MaxRemovals)
	}
	if _, ok := tb.recs[root.KeyString()]; ok {
		t.Fatal("the restore record was not evicted first")
	}
	if _, ok := tb.recs[testRoot(t, string(rune(1000))).KeyString()]; ok {
		t.Fatal("the oldest removals were not evicted next")
	}
	enc, err := encodeRemovals(tb.all())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeRemovals(enc)
	if err != nil || len(recs) != MaxRemovals {
		t.Fatalf("decoded %d records, err %v", len(recs), err)
	}
	// A torn append: the records before it are kept, with an error.
	torn := append(bytes.Clone(enc), enc[:len(enc)/MaxRemovals-3]...)
	if recs, err := DecodeRemovals(torn); err == nil || len(recs) != MaxRemovals {
		t.Fatalf("a torn last frame: %d records kept, err %v", len(recs), err)
	}
	twice := append(bytes.Clone(enc), enc...)
	if recs, err := DecodeRemovals(twice); err != nil || len(recs) != MaxRemovalFrames {
		t.Fatalf("a file of %d frames: %d records, err %v", MaxRemovalFrames, len(recs), err)
	}
	over := append(bytes.Clone(twice), enc[:len(enc)/MaxRemovals]...)
	if _, err := DecodeRemovals(over); err == nil {
		t.Fatal("a file over the bound was accepted")
	}
}

// FuzzDecodeRemovals parses arbitrary removal record files: accepted ones
// re-encode to the same bytes.
func FuzzDecodeRemovals(f *testing.F) {
	id, k := testPeer(f)
	tb := newRemovals()
	tb.put(signedRemoval(f, k, id, testRoot(f, "a"), 1, false))
	tb.put(signedRemoval(f, k, id, testRoot(f, "b"), 2, true))
	tb.put(signedSuccessor(f, k, id, testRoot(f, "c"), testRoot(f, "d"), 3))
	enc, err := encodeRemovals(tb.all())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(enc)
	f.Add([]byte{})
	f.Add([]byte{0x02, 0x33, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := DecodeRemovals(b)
		if err != nil {
			return
		}
		if len(recs) > MaxRemovalFrames {
			t.Fatalf("%d records over the bound", len(recs))
		}
		var out bytes.Buffer
		fw := proto.NewFrameWriter(&out, proto.FrameOverhead)
		for _, r := range recs {
			body, err := proto.EncodeMsg(r)
			if err != nil {
				t.Fatalf("re-encoding an accepted record: %v", err)
			}
			if err := fw.WriteFrame(body); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		again, err := DecodeRemovals(out.Bytes())
		if err != nil || len(again) != len(recs) {
			t.Fatalf("decoding our own encoding: %d records, %v", len(again), err)
		}
	})
}

// TestStoreInlineVerifies checks the holder's side of an inline placement:
// content that does not match the manifest stores nothing.
func TestStoreInlineVerifies(t *testing.T) {
	ctx := t.Context()
	src, err := chunk.Open(t.TempDir(), chunk.Options{Chunking: smallChunks})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	data := swarmtest.RandomContent(t, 100<<10) // several chunks of smallChunks
	root, m, err := src.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Chunks) < 2 {
		t.Fatalf("want several chunks, got %d", len(m.Chunks))
	}
	dst, err := chunk.Open(t.TempDir(), chunk.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	r := &Replicator{store: dst}
	nothingStored := func(what string) {
		t.Helper()
		if _, err := dst.Manifest(ctx, root); !errors.Is(err, chunk.ErrNotFound) {
			t.Fatalf("after %s the manifest is recorded (%v)", what, err)
		}
		if st := dst.Stats(); st.Chunks != 0 {
			t.Fatalf("after %s %d chunks are stored", what, st.Chunks)
		}
	}

	if err := r.storeInline(ctx, m, data[:len(data)-1]); !errors.Is(err, proto.ErrInvalid) {
		t.Fatalf("short content: got %v, want ErrInvalid", err)
	}
	nothingStored("a short content")
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1 // only the last chunk is wrong
	if err := r.storeInline(ctx, m, bad); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("tampered content: got %v, want ErrCorrupt", err)
	}
	nothingStored("a tampered content")
	if err := r.storeInline(ctx, m, data); err != nil {
		t.Fatal(err)
	}
	if ms, err := dst.Missing(ctx, root); err != nil || len(ms) != 0 {
		t.Fatalf("after a good inline content: %d chunks missing, %v", len(ms), err)
	}
	var out bytes.Buffer
	if _, err := dst.WriteTo(ctx, root, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("content read back differs (err %v)", err)
	}
}

func signedSuccessor(t testing.TB, k crypto.PrivKey, id peer.ID, root, next cid.Cid, at int64) *proto.Removal {
	t.Helper()
	r := &proto.Removal{Root: root, Issuer: []byte(id), Time: at, Successor: next}
	sig, err := k.Sign(r.SigningBytes())
	if err != nil {
		t.Fatal(err)
	}
	r.Sig = sig
	return r
}

// TestSuccessorRecords: a successor record is verified as a removal (a
// member's signature over the successor too), survives the records file,
// and Resolve follows a chain, bounded, stopping on a cycle.
func TestSuccessorRecords(t *testing.T) {
	id, k := testPeer(t)
	stranger, sk := testPeer(t)
	pl := policy{def: &rules.Definition{Members: []rules.Member{{Name: "m", Peer: rules.PeerID(id), Role: rules.RoleStorage}}}}
	o, n, n2 := testRoot(t, "old"), testRoot(t, "new"), testRoot(t, "newer")
	rec := signedSuccessor(t, k, id, o, n, 10)
	if err := verifyRemoval(pl, rec); err != nil {
		t.Fatalf("a member's successor record refused: %v", err)
	}
	redirected := signedSuccessor(t, k, id, o, n, 10)
	redirected.Successor = n2 // signed for n
	foreign := signedSuccessor(t, sk, stranger, o, n, 10)
	for name, r := range map[string]*proto.Removal{"redirected": redirected, "non-member": foreign} {
		if err := verifyRemoval(pl, r); !errors.Is(err, ErrBadRemoval) {
			t.Errorf("%s successor record: got %v, want ErrBadRemoval", name, err)
		}
	}

	// Through the records file and back.
	enc, err := encodeRemovals([]*proto.Removal{rec, signedSuccessor(t, k, id, n, n2, 11), signedRemoval(t, k, id, n2, 12, false)})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := DecodeRemovals(enc)
	if err != nil || len(recs) != 3 {
		t.Fatalf("decoded %d records, err %v", len(recs), err)
	}
	for _, got := range recs {
		if err := verifyRemoval(pl, got); err != nil {
			t.Fatalf("a record read back does not verify: %v", err)
		}
	}
	r := &Replicator{tombs: newRemovals()}
	for _, got := range recs {
		r.tombs.put(got)
	}
	if next, ok := r.tombs.successor(o); !ok || next != n {
		t.Fatalf("successor of o read back = %s, %v; want %s", next, ok, n)
	}
	if got := r.Resolve(o); got != n2 {
		t.Fatalf("Resolve(o) = %s, want %s (o → n → n2)", got, n2)
	}
	if got := r.Resolve(n2); got != n2 {
		t.Fatalf("Resolve of a plain removal = %s, want itself", got)
	}
	if !r.tombs.removed(o) {
		t.Fatal("a successor record is not a removal")
	}
	// A restore of n cuts the chain there.
	r.tombs.put(signedRemoval(t, k, id, n, 20, true))
	if got := r.Resolve(o); got != n {
		t.Fatalf("Resolve(o) after n was restored = %s, want %s", got, n)
	}

	// A cycle a → b → a ends before it repeats; a long chain is bounded.
	a, b := testRoot(t, "a"), testRoot(t, "b")
	r.tombs.put(signedSuccessor(t, k, id, a, b, 30))
	r.tombs.put(signedSuccessor(t, k, id, b, a, 31))
	if got := r.Resolve(a); got != b {
		t.Fatalf("Resolve on a cycle = %s, want %s", got, b)
	}
	if c := r.chain(b); len(c) != 2 || c[1] != a {
		t.Fatalf("chain of b on a cycle = %v", c)
	}
	long := []cid.Cid{testRoot(t, "l0")}
	for i := 1; i <= MaxSuccessorSteps+3; i++ {
		long = append(long, testRoot(t, "l"+string(rune('0'+i))))
		r.tombs.put(signedSuccessor(t, k, id, long[i-1], long[i], int64(40+i)))
	}
	if got := r.Resolve(long[0]); got != long[MaxSuccessorSteps] {
		t.Fatalf("Resolve on a long chain = %s, want step %d", got, MaxSuccessorSteps)
	}
}

// TestCheckSuccessor: the replicated form of the right successor proves
// it, another content's manifest is refused when the old manifest is
// known, and an old coded root whose manifest is unknown is not provable.
func TestCheckSuccessor(t *testing.T) {
	ctx := t.Context()
	data := make([]byte, 300<<10)
	rand.Read(data)
	build := func(b []byte, key string, k, m int) (*chunk.Manifest, cid.Cid) {
		t.Helper()
		var man *chunk.Manifest
		var err error
		if k == 0 {
			man, err = chunk.BuildManifest(ctx, bytes.NewReader(b), key, smallChunks, func(chunk.ChunkRef, []byte) error { return nil })
		} else {
			man, err = chunk.BuildCodedManifest(ctx, bytes.NewReader(b), key, smallChunks, k, m, func(chunk.ChunkRef, []byte, [][]byte) error { return nil })
		}
		if err != nil {
			t.Fatal(err)
		}
		c, err := man.CID()
		if err != nil {
			t.Fatal(err)
		}
		return man, c
	}
	rep, o := build(data, "K", 0, 0)
	coded, n := build(data, "K", 4, 2)
	other := bytes.Clone(data)
	other[1000] ^= 1
	liar, _ := build(other, "K", 4, 2)
	otherKey, _ := build(data, "L", 4, 2)

	if exact, err := CheckSuccessor(o, nil, coded); err != nil || !exact {
		t.Fatalf("the coded form of a replicated content: exact %v, err %v", exact, err)
	}
	for name, m := range map[string]*chunk.Manifest{"other bytes": liar, "other key": otherKey} {
		if exact, err := CheckSuccessor(o, nil, m); exact || err != nil {
			t.Errorf("%s, old manifest unknown: exact %v, err %v; want not provable", name, exact, err)
		}
		if _, err := CheckSuccessor(o, rep, m); !errors.Is(err, ErrBadSuccessor) {
			t.Errorf("%s, old manifest known: err %v, want ErrBadSuccessor", name, err)
		}
	}
	// Coded to replicated (erasure=none after 4+2): provable with the
	// old coded manifest, not without it.
	if exact, err := CheckSuccessor(n, coded, rep); err != nil || !exact {
		t.Fatalf("back to replicated with the old manifest: exact %v, err %v", exact, err)
	}
	if exact, err := CheckSuccessor(n, nil, rep); err != nil || exact {
		t.Fatalf("back to replicated without the old manifest: exact %v, err %v", exact, err)
	}
}

// TestRemovalsUnsentSinceMarked: a member is sent only the records kept or
// replaced since what it last got, a newer record of a root it has is sent
// again, a member never sent gets every record held, and evicted records are
// not sent.
func TestRemovalsUnsentSinceMarked(t *testing.T) {
	id, k := testPeer(t)
	a, _ := testPeer(t)
	b, _ := testPeer(t)
	tb := newRemovals()
	roots := make([]cid.Cid, 5)
	for i := range roots {
		roots[i] = testRoot(t, fmt.Sprint("u", i))
		tb.put(signedRemoval(t, k, id, roots[i], int64(10+i), false))
	}
	got, upto := tb.unsent(a)
	if len(got) != 5 {
		t.Fatalf("a member never sent: %d records, want 5", len(got))
	}
	// A record kept after unsent and before markSent is still unsent.
	tb.put(signedRemoval(t, k, id, roots[0], 20, true))
	tb.markSent(a, upto)
	got, upto = tb.unsent(a)
	if len(got) != 1 || !got[0].Root.Equals(roots[0]) || !got[0].Restore {
		t.Fatalf("after markSent: %v, want the restore of root 0", got)
	}
	tb.markSent(a, upto)
	if got, _ := tb.unsent(a); len(got) != 0 {
		t.Fatalf("all sent: %d records unsent", len(got))
	}
	// An older markSent (a slower send finishing late) does not go back.
	tb.markSent(a, 1)
	if got, _ := tb.unsent(a); len(got) != 0 {
		t.Fatalf("a late markSent made %d records unsent again", len(got))
	}
	if got, _ := tb.unsent(b); len(got) != 5 {
		t.Fatalf("another member: %d records, want 5", len(got))
	}
	// Past the bound: what a member gets is what is held, each root once.
	for i := range 3 * MaxRemovals {
		tb.put(signedRemoval(t, k, id, testRoot(t, fmt.Sprint("v", i)), int64(100+i), false))
	}
	got, _ = tb.unsent(b)
	seen := map[string]bool{}
	for _, r := range got {
		if _, ok := tb.recs[r.Root.KeyString()]; !ok || seen[r.Root.KeyString()] {
			t.Fatalf("sent an evicted or repeated record of %s", r.Root)
		}
		seen[r.Root.KeyString()] = true
	}
	if len(got) != MaxRemovals {
		t.Fatalf("a new member gets %d records, %d held", len(got), MaxRemovals)
	}
	if got, _ := tb.unsent(a); len(got) != MaxRemovals {
		t.Fatalf("a member behind by more than the bound gets %d records, want %d", len(got), MaxRemovals)
	}
	if n := len(tb.changes) + len(tb.victims); n > 4*MaxRemovals+128 {
		t.Fatalf("%d bookkeeping entries for %d records", n, len(tb.recs))
	}
}

// BenchmarkRemovalsPutUnsent is the bookkeeping of one rm with the
// records file full: keep a record, find what each of two members lacks,
// mark it sent.
func BenchmarkRemovalsPutUnsent(b *testing.B) {
	id, k := testPeer(b)
	p1, _ := testPeer(b)
	p2, _ := testPeer(b)
	tb := newRemovals()
	recs := make([]*proto.Removal, MaxRemovals+b.N)
	for i := range recs {
		recs[i] = signedRemoval(b, k, id, testRoot(b, fmt.Sprint("b", i)), int64(i+1), i%2 == 0)
	}
	for _, r := range recs[:MaxRemovals] {
		tb.put(r)
	}
	b.ResetTimer()
	for i := range b.N {
		tb.put(recs[MaxRemovals+i])
		for _, p := range []peer.ID{p1, p2} {
			got, upto := tb.unsent(p)
			if len(got) == 0 {
				b.Fatal("nothing unsent")
			}
			tb.markSent(p, upto)
		}
	}
}
