package chunk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	cid "github.com/ipfs/go-cid"
	"github.com/klauspost/reedsolomon"
)

// This file implements docs/ERASURE.md#layout: every chunk is coded on its
// own into k data shards and m parity shards.

// MaxShards bounds k+m of a coded manifest; rules.MaxShards is the same
// bound on the policy (docs/ERASURE.md#layout).
const MaxShards = 32

// ErrTooFewShards is returned by DecodeChunk, DecodeChunkInto and
// RebuildShards when fewer than k shards of a chunk are present.
var ErrTooFewShards = errors.New("chunk: too few shards to rebuild the chunk")

// coders caches one Reed-Solomon coder per k+m; they are safe for
// concurrent use.
var coders sync.Map // [2]int -> reedsolomon.Encoder

// coder returns the coder of k data and m parity shards. The coding matrix is
// klauspost/reedsolomon's default (a systematic Vandermonde matrix over
// GF(2^8)); shard CIDs depend on it, so it MUST NOT change within a layout.
func coder(k, m int) (reedsolomon.Encoder, error) {
	if k < 1 || m < 1 || k+m > MaxShards {
		return nil, fmt.Errorf("erasure scheme %d+%d: want k >= 1, m >= 1, k+m <= %d", k, m, MaxShards)
	}
	key := [2]int{k, m}
	if c, ok := coders.Load(key); ok {
		return c.(reedsolomon.Encoder), nil
	}
	c, err := reedsolomon.New(k, m, reedsolomon.WithMaxGoroutines(1))
	if err != nil {
		return nil, fmt.Errorf("making a %d+%d coder: %w", k, m, err)
	}
	got, _ := coders.LoadOrStore(key, c)
	return got.(reedsolomon.Encoder), nil
}

// ShardSize returns the size of every shard of a chunk of length bytes coded
// with k data shards: ceil(length / k).
func ShardSize(length, k int) int { return (length + k - 1) / k }

// EncodeShards codes one chunk into k+m shards of ShardSize(len(data), k)
// bytes each: shards 0..k-1 are the chunk's bytes in order, the last one
// zero-padded, and shards k..k+m-1 are parity. Identical chunks give
// identical shards. The data shards that are whole slices of data alias it
// (no copy), so the shards are valid only as long as data is.
func EncodeShards(data []byte, k, m int) ([][]byte, error) {
	return EncodeShardsInto(nil, data, k, m)
}

// EncodeShardsInto is EncodeShards writing the padded last data shard and
// the parity shards into buf when its capacity allows (a reused buffer of
// (m+1) × ShardSize bytes, so that coding many chunks allocates nothing), else
// into a new buffer. The shards alias data and buf.
func EncodeShardsInto(buf, data []byte, k, m int) ([][]byte, error) {
	rs, err := coder(k, m)
	if err != nil {
		return nil, err
	}
	if len(data) == 0 || len(data) > MaxChunkSize {
		return nil, fmt.Errorf("coding a chunk of %d bytes: want 1 to %d", len(data), MaxChunkSize)
	}
	size := ShardSize(len(data), k)
	full := len(data) / size // data shards that are whole slices of data
	if need := (k + m - full) * size; cap(buf) >= need {
		buf = buf[:need]
		clear(buf[copy(buf, data[full*size:]):])
	} else {
		buf = make([]byte, need)
		copy(buf, data[full*size:])
	}
	shards := make([][]byte, k+m)
	for i := range shards {
		if i < full {
			shards[i] = data[i*size : (i+1)*size : (i+1)*size]
		} else {
			j := i - full
			shards[i] = buf[j*size : (j+1)*size : (j+1)*size]
		}
	}
	if err := rs.Encode(shards); err != nil {
		return nil, fmt.Errorf("coding a chunk of %d bytes: %w", len(data), err)
	}
	return shards, nil
}

// EncodeChunk codes one chunk as EncodeShards does (the data shards alias
// data) and returns the shards with their CIDs (CIDv1 raw sha2-256, the
// form of a chunk CID).
func EncodeChunk(data []byte, k, m int) ([][]byte, []cid.Cid, error) {
	shards, err := EncodeShards(data, k, m)
	if err != nil {
		return nil, nil, err
	}
	ids := make([]cid.Cid, len(shards))
	for i, s := range shards {
		ids[i] = SumChunk(s)
	}
	return shards, ids, nil
}

// checkShards checks the shape of a chunk's shards: k+m entries, nil for a
// missing one, every present one ShardSize bytes, at least k present.
func checkShards(ref ChunkRef, shards [][]byte, k, m int) error {
	if len(shards) != k+m {
		return fmt.Errorf("decoding chunk %s: %d shards given, want %d", ref.CID, len(shards), k+m)
	}
	if ref.Length == 0 || ref.Length > MaxChunkSize {
		return fmt.Errorf("decoding chunk %s: length %d", ref.CID, ref.Length)
	}
	size, n := ShardSize(int(ref.Length), k), 0
	for i, s := range shards {
		if s == nil {
			continue
		}
		if len(s) != size {
			return fmt.Errorf("decoding chunk %s: shard %d is %d bytes, want %d: %w", ref.CID, i, len(s), size, ErrCorrupt)
		}
		n++
	}
	if n < k {
		return fmt.Errorf("decoding chunk %s: %d of %d shards present, %d needed: %w", ref.CID, n, k+m, k, ErrTooFewShards)
	}
	return nil
}

// DecodeChunk rebuilds a chunk of ref.Length bytes from its k+m shards
// (shards[i] is shard i, nil when missing; at least k present) and verifies
// it against ref.CID. When all k data shards are present it only joins them.
// shards is not modified. A result that does not match ref.CID is an error
// wrapping ErrCorrupt: some present shard was wrong; callers SHOULD verify
// each shard against its CID on arrival (VerifyChunk) so that this names no
// one. Fewer than k shards give ErrTooFewShards.
func DecodeChunk(ref ChunkRef, shards [][]byte, k, m int) ([]byte, error) {
	return DecodeChunkInto(nil, ref, shards, k, m)
}

// DecodeChunkInto is DecodeChunk writing the chunk into buf when its
// capacity allows (k × ShardSize bytes, reused across chunks so that a get
// allocates nothing per chunk), else into a new buffer. The missing data
// shards are rebuilt in place in the result.
func DecodeChunkInto(buf []byte, ref ChunkRef, shards [][]byte, k, m int) ([]byte, error) {
	rs, err := coder(k, m)
	if err != nil {
		return nil, err
	}
	if err := checkShards(ref, shards, k, m); err != nil {
		return nil, err
	}
	size := ShardSize(int(ref.Length), k)
	if cap(buf) < k*size {
		buf = make([]byte, k*size)
	}
	out := buf[:k*size]
	work := make([][]byte, k+m)
	copy(work[k:], shards[k:])
	missing := false
	for i, sh := range shards[:k] {
		if sh == nil {
			work[i] = out[i*size : i*size : (i+1)*size] // empty: the coder fills it in place
			missing = true
			continue
		}
		work[i] = out[i*size : (i+1)*size]
		copy(work[i], sh)
	}
	if missing {
		if err := rs.ReconstructData(work); err != nil {
			return nil, fmt.Errorf("decoding chunk %s: %w", ref.CID, err)
		}
	}
	data := out[:ref.Length]
	if err := VerifyChunk(ref.CID, data); err != nil {
		return nil, fmt.Errorf("decoding chunk from %d+%d shards: %w", k, m, err)
	}
	return data, nil
}

// RebuildShards fills in every missing shard of a chunk (data and parity)
// from the k or more present ones, as a repair does, and verifies each
// against ref.Shards. A rebuilt shard that does not match its CID is an
// error wrapping ErrCorrupt; shards is then left partly filled.
func RebuildShards(ref ChunkRef, shards [][]byte, k, m int) error {
	rs, err := coder(k, m)
	if err != nil {
		return err
	}
	if len(ref.Shards) != k+m {
		return fmt.Errorf("rebuilding shards of chunk %s: the reference lists %d shard CIDs, want %d", ref.CID, len(ref.Shards), k+m)
	}
	if err := checkShards(ref, shards, k, m); err != nil {
		return err
	}
	missing := make([]bool, len(shards))
	for i, s := range shards {
		missing[i] = s == nil
	}
	if err := rs.Reconstruct(shards); err != nil {
		return fmt.Errorf("rebuilding shards of chunk %s: %w", ref.CID, err)
	}
	for i, s := range shards {
		if missing[i] {
			if err := VerifyChunk(ref.Shards[i], s); err != nil {
				return fmt.Errorf("rebuilding shard %d of chunk %s: %w", i, ref.CID, err)
			}
		}
	}
	return nil
}

// BuildCodedManifest reads r to its end, splits it with p, codes every chunk
// into k+m shards and calls fn with each chunk's reference (Shards filled),
// its bytes and its shards, in order; data and shards are only valid during
// the call. It returns the version 2 manifest of the whole stream
// (docs/MANIFEST.md#version-2-erasure-coded-contents).
func BuildCodedManifest(ctx context.Context, r io.Reader, key string, p Params, k, m int, fn func(ref ChunkRef, data []byte, shards [][]byte) error) (*Manifest, error) {
	if _, err := coder(k, m); err != nil {
		return nil, fmt.Errorf("building a coded manifest: %w", err)
	}
	var shardIDs [][]cid.Cid
	man, err := BuildManifest(ctx, r, key, p, func(ref ChunkRef, data []byte) error {
		shards, ids, err := EncodeChunk(data, k, m)
		if err != nil {
			return err
		}
		ref.Shards = ids
		if err := fn(ref, data, shards); err != nil {
			return err
		}
		shardIDs = append(shardIDs, ids)
		return nil
	})
	if err != nil {
		return nil, err
	}
	man.Version, man.Layout = ManifestVersionErasure, Layout{Kind: LayoutErasure, K: k, M: m}
	for i := range man.Chunks {
		man.Chunks[i].Shards = shardIDs[i]
	}
	return man, nil
}

// validateLayout checks the layout against the version: version 1 is
// replicated with k = m = 0, version 2 is erasure with 1 <= k, 1 <= m,
// k+m <= MaxShards.
func (m *Manifest) validateLayout() error {
	l := m.Layout
	switch {
	case m.Version == ManifestVersion && l.Kind == LayoutReplicated && l.K == 0 && l.M == 0:
		return nil
	case m.Version == ManifestVersionErasure && l.Kind == LayoutErasure && l.K >= 1 && l.M >= 1 && l.K+l.M <= MaxShards:
		return nil
	}
	return fmt.Errorf("%w: unknown layout %q k=%d m=%d in version %d", ErrBadManifest, l.Kind, l.K, l.M, m.Version)
}

// validateShards checks chunk i's shard CIDs: none in version 1, exactly
// k+m chunk-form CIDs in version 2.
func (m *Manifest) validateShards(i int, c ChunkRef) error {
	want := 0
	if m.Version == ManifestVersionErasure {
		want = m.Layout.K + m.Layout.M
	}
	if len(c.Shards) != want {
		return fmt.Errorf("%w: chunk %d lists %d shards, want %d", ErrBadManifest, i, len(c.Shards), want)
	}
	for j, s := range c.Shards {
		if !IsChunkCID(s) {
			return fmt.Errorf("%w: chunk %d shard %d: %s is not a chunk CID", ErrBadManifest, i, j, s)
		}
	}
	return nil
}

// Coded reports whether m is an erasure-coded (version 2) manifest.
func (m *Manifest) Coded() bool { return m.Version == ManifestVersionErasure }

// ReplicatedForm returns the version 1 (replicated) manifest of the same
// content: the same size, key and chunks (CID, offset, length), no shards.
// A coded manifest and its replicated form describe the same bytes, and
// the encoding is canonical, so the CID of the replicated form is the
// CID the content has when replicated: re-coding checks a successor with
// it (docs/ERASURE.md "Re-coding"). For a version 1 manifest it is a copy.
func (m *Manifest) ReplicatedForm() *Manifest {
	out := &Manifest{Version: ManifestVersion, Size: m.Size, Key: m.Key,
		Layout: Layout{Kind: LayoutReplicated}, Chunks: make([]ChunkRef, len(m.Chunks))}
	for i, c := range m.Chunks {
		out.Chunks[i] = ChunkRef{CID: c.CID, Offset: c.Offset, Length: c.Length}
	}
	return out
}

// ShardSet returns the CIDs of shard index i of every chunk of a coded
// manifest, in chunk order: what the holder of shard i keeps.
func (m *Manifest) ShardSet(i int) ([]cid.Cid, error) {
	if !m.Coded() {
		return nil, fmt.Errorf("%w: shard set of a version %d manifest", ErrBadManifest, m.Version)
	}
	if i < 0 || i >= m.Layout.K+m.Layout.M {
		return nil, fmt.Errorf("shard index %d of a %d+%d manifest", i, m.Layout.K, m.Layout.M)
	}
	ids := make([]cid.Cid, len(m.Chunks))
	for j, c := range m.Chunks {
		ids[j] = c.Shards[i]
	}
	return ids, nil
}
