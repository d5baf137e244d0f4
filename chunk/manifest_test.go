package chunk_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

func buildManifest(t testing.TB, data []byte, key string) *chunk.Manifest {
	t.Helper()
	m, err := chunk.BuildManifest(context.Background(), bytes.NewReader(data), key, chunktest.Params,
		func(ref chunk.ChunkRef, b []byte) error { return chunk.VerifyChunk(ref.CID, b) })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestManifestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 200_000} {
		m := buildManifest(t, chunktest.Content(uint64(n), n), "SHA256E-s1--abc.txt")
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := chunk.DecodeManifest(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := got.Encode()
		if err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		id, err := m.CID()
		if err != nil || id != chunk.ManifestCID(b) || !chunk.IsManifestCID(id) {
			t.Fatalf("manifest CID %s: %v", id, err)
		}
		if p, err := chunk.ParseCID(id.String()); err != nil || p != id {
			t.Fatalf("ParseCID(%s) = %s, %v", id, p, err)
		}
	}
}

func TestManifestValidation(t *testing.T) {
	good := func() *chunk.Manifest { return buildManifest(t, chunktest.Content(9, 100_000), "") }
	mcid, _ := good().CID()
	cases := map[string]func(m *chunk.Manifest){
		"version":     func(m *chunk.Manifest) { m.Version = 2 },
		"size":        func(m *chunk.Manifest) { m.Size++ },
		"negative":    func(m *chunk.Manifest) { m.Size = -1 },
		"layout":      func(m *chunk.Manifest) { m.Layout.Kind = "erasure" },
		"layout k":    func(m *chunk.Manifest) { m.Layout.K = 3 },
		"offset":      func(m *chunk.Manifest) { m.Chunks[1].Offset++ },
		"zero length": func(m *chunk.Manifest) { m.Chunks[0].Length = 0 },
		"too long":    func(m *chunk.Manifest) { m.Chunks[0].Length = chunk.MaxChunkSize + 1 },
		"cid kind":    func(m *chunk.Manifest) { m.Chunks[0].CID = mcid },
		"cid v0": func(m *chunk.Manifest) {
			m.Chunks[0].CID = cid.NewCidV0(m.Chunks[0].CID.Hash())
		},
		"key": func(m *chunk.Manifest) { m.Key = "a key" },
	}
	for name, mutate := range cases {
		m := good()
		mutate(m)
		if _, err := m.Encode(); !errors.Is(err, chunk.ErrBadManifest) {
			t.Errorf("%s: Encode gave %v, want ErrBadManifest", name, err)
		}
	}
}

func TestDecodeManifestRejects(t *testing.T) {
	m := buildManifest(t, chunktest.Content(8, 50_000), "")
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": b[:len(b)-1],
		"trailing":  append(bytes.Clone(b), 0),
		"version 2": append([]byte{b[0], 0x02}, b[2:]...),
		// 0x18 0x01: the integer 1 in a non-minimal two-byte form.
		"non-canonical": append([]byte{b[0], 0x18, 0x01}, b[2:]...),
		"huge":          make([]byte, chunk.MaxManifestSize+1),
	}
	for name, in := range cases {
		if _, err := chunk.DecodeManifest(in); !errors.Is(err, chunk.ErrBadManifest) {
			t.Errorf("%s: %v, want ErrBadManifest", name, err)
		}
	}
}

func TestVerifyChunk(t *testing.T) {
	data := []byte("hello")
	id := chunk.SumChunk(data)
	if err := chunk.VerifyChunk(id, data); err != nil {
		t.Fatal(err)
	}
	if err := chunk.VerifyChunk(id, []byte("hellO")); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("mismatch: %v", err)
	}
	if err := chunk.VerifyChunk(cid.NewCidV0(id.Hash()), data); !errors.Is(err, chunk.ErrBadCID) {
		t.Fatalf("CIDv0: %v", err)
	}
	for _, s := range []string{"", "nonsense", cid.NewCidV0(id.Hash()).String(), cid.NewCidV1(cid.DagCBOR, id.Hash()).String()} {
		if _, err := chunk.ParseCID(s); !errors.Is(err, chunk.ErrBadCID) {
			t.Errorf("ParseCID(%q): %v", s, err)
		}
	}
	if got, err := chunk.ParseCID(id.String()); err != nil || got != id {
		t.Fatalf("ParseCID of a chunk CID: %v", err)
	}
}

// FuzzDecodeManifest checks that whatever decodes re-encodes to the same
// bytes and keeps its CID.
func FuzzDecodeManifest(f *testing.F) {
	for _, n := range []int{0, 5000, 100_000} {
		b, err := buildManifest(f, chunktest.Content(uint64(n), n), "WORM-s1--x").Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		c, err := buildCoded(f, chunktest.Content(uint64(n), n), "WORM-s1--x", 4, 2).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := chunk.DecodeManifest(b)
		if err != nil {
			if !errors.Is(err, chunk.ErrBadManifest) {
				t.Fatalf("error not wrapping ErrBadManifest: %v", err)
			}
			return
		}
		again, err := m.Encode()
		if err != nil {
			t.Fatalf("decoded manifest does not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatal("decoded manifest re-encodes differently")
		}
		if id, err := m.CID(); err != nil || id != chunk.ManifestCID(b) {
			t.Fatalf("CID mismatch: %v", err)
		}
	})
}
