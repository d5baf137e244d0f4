package chunk_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// buildCoded builds the version 2 manifest of data with the suite's small
// chunking parameters, checking every chunk's shards on the way.
func buildCoded(t testing.TB, data []byte, key string, k, m int) *chunk.Manifest {
	t.Helper()
	return buildCodedWith(t, data, key, k, m, chunktest.Params)
}

func buildCodedWith(t testing.TB, data []byte, key string, k, m int, p chunk.Params) *chunk.Manifest {
	t.Helper()
	man, err := chunk.BuildCodedManifest(context.Background(), bytes.NewReader(data), key, p, k, m,
		func(ref chunk.ChunkRef, b []byte, shards [][]byte) error {
			for i, s := range shards {
				if err := chunk.VerifyChunk(ref.Shards[i], s); err != nil {
					return err
				}
			}
			return chunk.VerifyChunk(ref.CID, b)
		})
	if err != nil {
		t.Fatal(err)
	}
	return man
}

// subsets calls fn with every set of at most max indexes out of n.
func subsets(n, max int, fn func(missing []int)) {
	var rec func(start int, cur []int)
	rec = func(start int, cur []int) {
		fn(cur)
		if len(cur) == max {
			return
		}
		for i := start; i < n; i++ {
			rec(i+1, append(slices.Clone(cur), i))
		}
	}
	rec(0, nil)
}

// TestEncodeDecodeChunk codes chunks of awkward sizes with several schemes
// and decodes them from every set of up to m missing shards.
func TestEncodeDecodeChunk(t *testing.T) {
	for _, s := range [][2]int{{1, 1}, {2, 1}, {4, 2}, {6, 3}, {3, 5}, {16, 16}} {
		k, m := s[0], s[1]
		for _, n := range []int{1, k - 1, k, 4*k + 1, 100_003, chunk.MaxChunkSize} {
			if n < 1 {
				continue
			}
			t.Run(fmt.Sprintf("%d+%d/%d", k, m, n), func(t *testing.T) {
				data := chunktest.Content(uint64(n*k), n)
				shards, ids, err := chunk.EncodeChunk(data, k, m)
				if err != nil {
					t.Fatal(err)
				}
				size := chunk.ShardSize(n, k)
				if len(shards) != k+m || len(ids) != k+m {
					t.Fatalf("%d shards, %d CIDs", len(shards), len(ids))
				}
				// Systematic, zero-padded: the data shards are the chunk.
				joined := bytes.Join(shards[:k], nil)
				if !bytes.Equal(joined[:n], data) || bytes.ContainsFunc(joined[n:], func(r rune) bool { return r != 0 }) {
					t.Fatal("data shards are not the chunk's bytes, zero-padded")
				}
				for i, sh := range shards {
					if len(sh) != size || ids[i] != chunk.SumChunk(sh) || !chunk.IsChunkCID(ids[i]) {
						t.Fatalf("shard %d: %d bytes (want %d), CID %s", i, len(sh), size, ids[i])
					}
				}
				again, ids2, _ := chunk.EncodeChunk(data, k, m)
				if !slices.Equal(ids, ids2) || !bytes.Equal(bytes.Join(again, nil), bytes.Join(shards, nil)) {
					t.Fatal("coding the same chunk twice gave different shards")
				}
				ref := chunk.ChunkRef{CID: chunk.SumChunk(data), Length: uint32(n), Shards: ids}
				maxMissing := m
				if k+m > 8 || n > 200_000 {
					maxMissing = min(m, 1) // keep the work small; small chunks cover the subsets
				}
				subsets(k+m, maxMissing, func(missing []int) {
					in := slices.Clone(shards)
					for _, i := range missing {
						in[i] = nil
					}
					got, err := chunk.DecodeChunk(ref, in, k, m)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("missing %v: %v", missing, err)
					}
					dirty := bytes.Repeat([]byte{0xff}, k*size)
					if got, err := chunk.DecodeChunkInto(dirty, ref, in, k, m); err != nil || !bytes.Equal(got, data) || &got[0] != &dirty[0] {
						t.Fatalf("DecodeChunkInto a used buffer, missing %v: %v", missing, err)
					}
					for i := range in {
						if (in[i] == nil) != slices.Contains(missing, i) {
							t.Fatalf("missing %v: DecodeChunk changed the caller's shards", missing)
						}
					}
					if err := chunk.RebuildShards(ref, in, k, m); err != nil {
						t.Fatalf("rebuild, missing %v: %v", missing, err)
					}
					for i := range in {
						if !bytes.Equal(in[i], shards[i]) {
							t.Fatalf("rebuild, missing %v: shard %d differs", missing, i)
						}
					}
				})
			})
		}
	}
}

// TestDecodeChunkRejects checks too few shards, a lying shard, a wrong size
// and bad schemes.
func TestDecodeChunkRejects(t *testing.T) {
	data := chunktest.Content(3, 300_001)
	shards, ids, err := chunk.EncodeChunk(data, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	ref := chunk.ChunkRef{CID: chunk.SumChunk(data), Length: uint32(len(data)), Shards: ids}

	few := slices.Clone(shards)
	few[0], few[3], few[5] = nil, nil, nil
	if _, err := chunk.DecodeChunk(ref, few, 4, 2); !errors.Is(err, chunk.ErrTooFewShards) {
		t.Errorf("3 missing: %v, want ErrTooFewShards", err)
	}
	if err := chunk.RebuildShards(ref, few, 4, 2); !errors.Is(err, chunk.ErrTooFewShards) {
		t.Errorf("rebuild, 3 missing: %v, want ErrTooFewShards", err)
	}

	for _, missing := range [][]int{nil, {0}, {1, 4}} {
		bad := slices.Clone(shards)
		bad[2] = bytes.Clone(bad[2])
		bad[2][17] ^= 1
		for _, i := range missing {
			bad[i] = nil
		}
		if _, err := chunk.DecodeChunk(ref, bad, 4, 2); !errors.Is(err, chunk.ErrCorrupt) {
			t.Errorf("a lying shard 2, missing %v: %v, want ErrCorrupt", missing, err)
		}
	}
	lying := slices.Clone(shards)
	lying[1] = bytes.Clone(lying[1])
	lying[1][0] ^= 1
	lying[4] = nil
	if err := chunk.RebuildShards(ref, lying, 4, 2); !errors.Is(err, chunk.ErrCorrupt) {
		t.Errorf("rebuild from a lying shard: %v, want ErrCorrupt", err)
	}

	short := slices.Clone(shards)
	short[1] = short[1][:10]
	if _, err := chunk.DecodeChunk(ref, short, 4, 2); !errors.Is(err, chunk.ErrCorrupt) {
		t.Errorf("short shard: %v", err)
	}
	if _, err := chunk.DecodeChunk(ref, shards[:5], 4, 2); err == nil {
		t.Error("5 shards for 4+2 accepted")
	}
	for _, s := range [][2]int{{0, 2}, {4, 0}, {30, 3}, {-1, 1}} {
		if _, _, err := chunk.EncodeChunk(data, s[0], s[1]); err == nil {
			t.Errorf("scheme %d+%d accepted", s[0], s[1])
		}
	}
	if _, _, err := chunk.EncodeChunk(nil, 4, 2); err == nil {
		t.Error("an empty chunk was coded")
	}
}

// TestCodedManifestRoundTrip checks version 2 manifests round-trip, that
// version 1 ones still do, and that both are told apart.
func TestCodedManifestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 200_000} {
		data := chunktest.Content(uint64(n), n)
		v1 := buildManifest(t, data, "SHA256E-s1--abc.txt")
		v2 := buildCoded(t, data, "SHA256E-s1--abc.txt", 4, 2)
		for _, m := range []*chunk.Manifest{v1, v2} {
			b, err := m.Encode()
			if err != nil {
				t.Fatal(err)
			}
			got, err := chunk.DecodeManifest(b)
			if err != nil {
				t.Fatalf("version %d, %d bytes: %v", m.Version, n, err)
			}
			if got.Version != m.Version || got.Layout != m.Layout || got.Coded() != (m.Version == 2) {
				t.Fatalf("decoded version %d layout %+v, want %d %+v", got.Version, got.Layout, m.Version, m.Layout)
			}
			for i, c := range got.Chunks {
				if c.CID != m.Chunks[i].CID || !slices.Equal(c.Shards, m.Chunks[i].Shards) {
					t.Fatalf("chunk %d differs after the round trip", i)
				}
			}
			if b2, err := got.Encode(); err != nil || !bytes.Equal(b, b2) {
				t.Fatalf("re-encoding differs: %v", err)
			}
		}
		id1, _ := v1.CID()
		id2, _ := v2.CID()
		if id1 == id2 {
			t.Fatal("a coded manifest has the CID of the replicated one")
		}
		if v2.Layout != (chunk.Layout{Kind: chunk.LayoutErasure, K: 4, M: 2}) || v2.Version != chunk.ManifestVersionErasure {
			t.Fatalf("coded manifest: version %d layout %+v", v2.Version, v2.Layout)
		}
		for i, c := range v2.Chunks {
			if c.CID != v1.Chunks[i].CID || c.Offset != v1.Chunks[i].Offset || len(c.Shards) != 6 {
				t.Fatalf("chunk %d: coded and replicated manifests disagree", i)
			}
		}
	}
}

// TestCodedManifestValidation checks every version 2 rule of
// docs/MANIFEST.md#version-2-erasure-coded-contents.
func TestCodedManifestValidation(t *testing.T) {
	good := func() *chunk.Manifest { return buildCoded(t, chunktest.Content(9, 100_000), "", 4, 2) }
	mcid, _ := good().CID()
	cases := map[string]func(m *chunk.Manifest){
		"version 1":       func(m *chunk.Manifest) { m.Version = 1 },
		"version 3":       func(m *chunk.Manifest) { m.Version = 3 },
		"replicated":      func(m *chunk.Manifest) { m.Layout.Kind = chunk.LayoutReplicated },
		"k 0":             func(m *chunk.Manifest) { m.Layout.K = 0 },
		"m 0":             func(m *chunk.Manifest) { m.Layout.M = 0; m.Chunks[0].Shards = m.Chunks[0].Shards[:4] },
		"too many shards": func(m *chunk.Manifest) { m.Layout.K = 31 },
		"shard count":     func(m *chunk.Manifest) { m.Chunks[1].Shards = m.Chunks[1].Shards[:5] },
		"shard kind":      func(m *chunk.Manifest) { m.Chunks[0].Shards[3] = mcid },
		"shard undefined": func(m *chunk.Manifest) { m.Chunks[0].Shards[0] = cid.Undef },
	}
	for name, mutate := range cases {
		m := good()
		mutate(m)
		if _, err := m.Encode(); !errors.Is(err, chunk.ErrBadManifest) {
			t.Errorf("%s: Encode gave %v, want ErrBadManifest", name, err)
		}
	}
	v1 := buildManifest(t, chunktest.Content(9, 100_000), "")
	v1.Chunks[0].Shards = good().Chunks[0].Shards
	if _, err := v1.Encode(); !errors.Is(err, chunk.ErrBadManifest) {
		t.Errorf("version 1 with shards: %v", err)
	}
	b, _ := good().Encode()
	if _, err := chunk.DecodeManifest(append([]byte{b[0], 0x01}, b[2:]...)); !errors.Is(err, chunk.ErrBadManifest) {
		t.Errorf("version 2 body labelled 1: %v", err)
	}
	sets := good()
	for i := range 6 {
		ids, err := sets.ShardSet(i)
		if err != nil || len(ids) != len(sets.Chunks) || ids[0] != sets.Chunks[0].Shards[i] {
			t.Fatalf("ShardSet(%d): %v", i, err)
		}
	}
	if _, err := sets.ShardSet(6); err == nil {
		t.Error("ShardSet(6) of a 4+2 manifest")
	}
	if _, err := v1.ShardSet(0); err == nil {
		t.Error("ShardSet of a version 1 manifest")
	}
}

// TestCodedEditMovesFewShards: an edit in the middle of a coded content
// changes only the shards of the chunks it touches, so the "1 MiB edit moves
// a few MiB" behaviour of docs/MANIFEST.md carries over to coded contents.
func TestCodedEditMovesFewShards(t *testing.T) {
	const size, edit = 32 << 20, 1 << 20
	data := chunktest.Content(42, size)
	edited := bytes.Clone(data)
	copy(edited[size/2:], chunktest.Content(43, edit))
	before := buildCodedWith(t, data, "", 4, 2, chunk.DefaultParams)
	after := buildCodedWith(t, edited, "", 4, 2, chunk.DefaultParams)

	oldChunks := map[cid.Cid]bool{}
	oldShards := map[cid.Cid]bool{}
	for _, c := range before.Chunks {
		oldChunks[c.CID] = true
		for _, s := range c.Shards {
			oldShards[s] = true
		}
	}
	var newChunks, newShards int
	var newChunkBytes, newShardBytes int64
	for _, c := range after.Chunks {
		changed := !oldChunks[c.CID]
		if changed {
			newChunks++
			newChunkBytes += int64(c.Length)
		}
		for _, s := range c.Shards {
			// A changed chunk may still share a data shard with an old
			// one (same start); an unchanged chunk shares all of them.
			if !changed && !oldShards[s] {
				t.Fatalf("unchanged chunk at %d has a new shard", c.Offset)
			}
			if !oldShards[s] {
				newShards++
				newShardBytes += int64(chunk.ShardSize(int(c.Length), 4))
			}
		}
	}
	t.Logf("edit of %d MiB: %d of %d chunks new (%.2f MiB), %d new shards (%.2f MiB)",
		edit>>20, newChunks, len(after.Chunks), float64(newChunkBytes)/(1<<20), newShards, float64(newShardBytes)/(1<<20))
	if newChunks == 0 || newShards == 0 || newShards > 6*newChunks {
		t.Fatalf("%d new chunks but %d new shards", newChunks, newShards)
	}
	if newShardBytes > 3*newChunkBytes/2+6*3 || newShardBytes > 8<<20 {
		t.Fatalf("%d new shard bytes for %d new chunk bytes", newShardBytes, newChunkBytes)
	}
}

// TestReplicatedForm: the replicated form of a coded manifest is, byte
// for byte, the manifest the same content gets when it is put replicated,
// so its CID is the replicated content's CID.
func TestReplicatedForm(t *testing.T) {
	data := chunktest.Content(41, 3<<20)
	const key = "SHA256E-s3145728--00"
	rep := buildManifest(t, data, key)
	coded := buildCoded(t, data, key, 4, 2)
	want, err := rep.CID()
	if err != nil {
		t.Fatal(err)
	}
	got, err := coded.ReplicatedForm().CID()
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("replicated form of the coded manifest has CID %s, the replicated content %s", got, want)
	}
	if again, _ := rep.ReplicatedForm().CID(); again != want {
		t.Fatalf("replicated form of a version 1 manifest changed its CID: %s", again)
	}
	if c, _ := coded.CID(); c == want {
		t.Fatal("the coded manifest has the replicated one's CID")
	}
	// The key is part of it: another key, another CID.
	other := buildCoded(t, data, "SHA256E-s3145728--01", 4, 2)
	if c, _ := other.ReplicatedForm().CID(); c == want {
		t.Fatal("another key gives the same replicated form")
	}
}
