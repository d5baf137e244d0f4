package replicate

import (
	"bytes"
	"crypto/rand"
	"errors"
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
