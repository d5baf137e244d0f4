package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	cid "github.com/ipfs/go-cid"

	"github.com/fxamacker/cbor/v2"
)

// This file implements docs/MANIFEST.md.

// ManifestVersion is the manifest version of a replicated content.
const ManifestVersion = 1

// ManifestVersionErasure is the manifest version of an erasure-coded
// content (docs/MANIFEST.md#version-2-erasure-coded-contents). This package
// reads and writes both versions.
const ManifestVersionErasure = 2

// MaxManifestSize bounds an encoded manifest. At about 45 bytes per chunk it
// describes some 180 000 chunks, about 180 GiB at the default parameters; a
// coded manifest adds 38 bytes per shard to each chunk (4+2: some 30 000
// chunks, about 33 GiB).
const MaxManifestSize = 8 << 20

// MaxKeyLength bounds the git-annex key carried in a manifest.
const MaxKeyLength = 1024

// LayoutReplicated is the layout kind of a manifest whose chunks are stored
// whole on each holder. It is the only kind defined in version 1.
const LayoutReplicated = "replicated"

// LayoutErasure is the layout kind of a version 2 manifest: every chunk is
// coded into K data and M parity shards (docs/ERASURE.md#layout).
const LayoutErasure = "erasure"

// ErrBadManifest is wrapped by every error about a malformed or
// non-canonical manifest.
var ErrBadManifest = errors.New("chunk: invalid manifest")

// Manifest is the root object of one stored file: its size, the git-annex key
// it was stored under, and its chunks in order. Its CID (see CID) is the
// content's CID.
type Manifest struct {
	Version uint
	Size    int64
	Key     string // git-annex key; may be empty
	Layout  Layout
	Chunks  []ChunkRef
}

// Layout says how the chunks are spread over holders.
type Layout struct {
	Kind string // LayoutReplicated (version 1) or LayoutErasure (version 2)
	K, M int    // data and parity shards for LayoutErasure; 0 for LayoutReplicated
}

// ChunkRef is one chunk of a file: its CID and where it sits in the file.
type ChunkRef struct {
	CID    cid.Cid
	Offset int64
	Length uint32
	// Shards are the CIDs of the chunk's K+M shards (see EncodeChunk) in a
	// version 2 manifest; nil in version 1.
	Shards []cid.Cid
}

// Wire forms: fixed-length CBOR arrays (docs/MANIFEST.md#encoding).
type wireManifest struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Size    uint64
	Key     string
	Layout  wireLayout
	Chunks  []wireChunk
}

type wireLayout struct {
	_    struct{} `cbor:",toarray"`
	Kind string
	K, M uint64
}

type wireChunk struct {
	_      struct{} `cbor:",toarray"`
	CID    []byte
	Offset uint64
	Length uint32
}

// Version 2 (docs/MANIFEST.md#version-2-erasure-coded-contents): each chunk
// entry gains the array of its shard CIDs.
type wireManifest2 struct {
	_       struct{} `cbor:",toarray"`
	Version uint64
	Size    uint64
	Key     string
	Layout  wireLayout
	Chunks  []wireChunk2
}

type wireChunk2 struct {
	_      struct{} `cbor:",toarray"`
	CID    []byte
	Offset uint64
	Length uint32
	Shards [][]byte
}

// manifestCodec holds the CBOR modes; both are immutable once built.
type manifestCodec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

var codec = newManifestCodec()

func newManifestCodec() manifestCodec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	dec, err := cbor.DecOptions{
		MaxArrayElements: MaxManifestSize / 8,
		MaxNestedLevels:  4,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return manifestCodec{enc: enc, dec: dec}
}

// Encode returns the canonical encoding of m after checking it against every
// rule in docs/MANIFEST.md#validation.
func (m *Manifest) Encode() ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	layout := wireLayout{Kind: m.Layout.Kind, K: uint64(m.Layout.K), M: uint64(m.Layout.M)}
	var w any
	if m.Version == ManifestVersionErasure {
		w2 := &wireManifest2{Version: uint64(m.Version), Size: uint64(m.Size), Key: m.Key, Layout: layout,
			Chunks: make([]wireChunk2, len(m.Chunks))}
		for i, c := range m.Chunks {
			shards := make([][]byte, len(c.Shards))
			for j, s := range c.Shards {
				shards[j] = s.Bytes()
			}
			w2.Chunks[i] = wireChunk2{CID: c.CID.Bytes(), Offset: uint64(c.Offset), Length: c.Length, Shards: shards}
		}
		w = w2
	} else {
		w1 := &wireManifest{Version: uint64(m.Version), Size: uint64(m.Size), Key: m.Key, Layout: layout,
			Chunks: make([]wireChunk, len(m.Chunks))}
		for i, c := range m.Chunks {
			w1.Chunks[i] = wireChunk{CID: c.CID.Bytes(), Offset: uint64(c.Offset), Length: c.Length}
		}
		w = w1
	}
	b, err := codec.enc.Marshal(w)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: encoding is %d bytes, over %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	return b, nil
}

// CID returns the manifest's CID: CIDv1, codec cbor (0x51), sha2-256 of the
// canonical encoding. This is the content's CID.
func (m *Manifest) CID() (cid.Cid, error) {
	b, err := m.Encode()
	if err != nil {
		return cid.Undef, err
	}
	return sumCID(CodecCBOR, b), nil
}

// ManifestCID returns the CID of an encoded manifest without decoding it.
func ManifestCID(encoded []byte) cid.Cid { return sumCID(CodecCBOR, encoded) }

// DecodeManifest decodes and fully validates an encoded manifest. It accepts
// only the canonical encoding, so that a manifest has exactly one CID.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, over %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	var head []cbor.RawMessage
	if err := codec.dec.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	var version uint64
	if len(head) == 0 || codec.dec.Unmarshal(head[0], &version) != nil {
		return nil, fmt.Errorf("%w: no version", ErrBadManifest)
	}
	var m *Manifest
	var err error
	switch version {
	case ManifestVersion:
		m, err = decodeV1(b)
	case ManifestVersionErasure:
		m, err = decodeV2(b)
	default:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrBadManifest, version)
	}
	if err != nil {
		return nil, err
	}
	again, err := m.Encode()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrBadManifest)
	}
	return m, nil
}

func decodeV1(b []byte) (*Manifest, error) {
	var w wireManifest
	if err := codec.dec.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	m, err := newDecoded(w.Version, w.Size, w.Key, w.Layout, len(w.Chunks))
	if err != nil {
		return nil, err
	}
	for i, c := range w.Chunks {
		if m.Chunks[i], err = decodeRef(i, c.CID, c.Offset, c.Length); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func decodeV2(b []byte) (*Manifest, error) {
	var w wireManifest2
	if err := codec.dec.Unmarshal(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	m, err := newDecoded(w.Version, w.Size, w.Key, w.Layout, len(w.Chunks))
	if err != nil {
		return nil, err
	}
	for i, c := range w.Chunks {
		if m.Chunks[i], err = decodeRef(i, c.CID, c.Offset, c.Length); err != nil {
			return nil, err
		}
		if len(c.Shards) > MaxShards {
			return nil, fmt.Errorf("%w: chunk %d lists %d shards, over %d", ErrBadManifest, i, len(c.Shards), MaxShards)
		}
		m.Chunks[i].Shards = make([]cid.Cid, len(c.Shards))
		for j, s := range c.Shards {
			if m.Chunks[i].Shards[j], err = cidFromBytes(s, cid.Raw); err != nil {
				return nil, fmt.Errorf("%w: chunk %d shard %d: %w", ErrBadManifest, i, j, err)
			}
		}
	}
	return m, nil
}

// newDecoded starts a decoded manifest from the fields both versions share.
func newDecoded(version, size uint64, key string, l wireLayout, chunks int) (*Manifest, error) {
	if size > math.MaxInt64 || l.K > math.MaxInt32 || l.M > math.MaxInt32 {
		return nil, fmt.Errorf("%w: number out of range", ErrBadManifest)
	}
	return &Manifest{
		Version: uint(version),
		Size:    int64(size),
		Key:     key,
		Layout:  Layout{Kind: l.Kind, K: int(l.K), M: int(l.M)},
		Chunks:  make([]ChunkRef, chunks),
	}, nil
}

func decodeRef(i int, id []byte, offset uint64, length uint32) (ChunkRef, error) {
	c, err := cidFromBytes(id, cid.Raw)
	if err != nil {
		return ChunkRef{}, fmt.Errorf("%w: chunk %d: %w", ErrBadManifest, i, err)
	}
	if offset > math.MaxInt64 {
		return ChunkRef{}, fmt.Errorf("%w: chunk %d: offset out of range", ErrBadManifest, i)
	}
	return ChunkRef{CID: c, Offset: int64(offset), Length: length}, nil
}

// validate checks the rules of docs/MANIFEST.md#validation.
func (m *Manifest) validate() error {
	if m.Version != ManifestVersion && m.Version != ManifestVersionErasure {
		return fmt.Errorf("%w: unsupported version %d", ErrBadManifest, m.Version)
	}
	if m.Size < 0 {
		return fmt.Errorf("%w: negative size", ErrBadManifest)
	}
	if err := ValidateKey(m.Key); err != nil {
		return fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if err := m.validateLayout(); err != nil {
		return err
	}
	var off int64
	for i, c := range m.Chunks {
		if !IsChunkCID(c.CID) {
			return fmt.Errorf("%w: chunk %d: %s is not a chunk CID", ErrBadManifest, i, c.CID)
		}
		if c.Offset != off {
			return fmt.Errorf("%w: chunk %d at offset %d, want %d", ErrBadManifest, i, c.Offset, off)
		}
		if c.Length == 0 || c.Length > MaxChunkSize {
			return fmt.Errorf("%w: chunk %d has length %d", ErrBadManifest, i, c.Length)
		}
		if err := m.validateShards(i, c); err != nil {
			return err
		}
		off += int64(c.Length)
		if off > m.Size {
			break
		}
	}
	if off != m.Size {
		return fmt.Errorf("%w: chunks cover %d bytes, size is %d", ErrBadManifest, off, m.Size)
	}
	return nil
}

// ValidateKey checks a git-annex key as a manifest may carry it: at most
// MaxKeyLength bytes, no ASCII control characters, spaces or DEL. The empty
// key is valid.
func ValidateKey(key string) error {
	if len(key) > MaxKeyLength {
		return fmt.Errorf("git-annex key of %d bytes, over %d", len(key), MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if c := key[i]; c <= ' ' || c == 0x7f {
			return fmt.Errorf("git-annex key with byte %#x at %d", c, i)
		}
	}
	return nil
}

// BuildManifest reads r to its end, splits it with p and calls fn with each
// chunk's reference and bytes, in order. data is only valid during the call.
// It returns the manifest of the whole stream, or the first error from
// reading, from fn, or from ctx.
func BuildManifest(ctx context.Context, r io.Reader, key string, p Params, fn func(ref ChunkRef, data []byte) error) (*Manifest, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("building manifest: %w", err)
	}
	m := &Manifest{Version: ManifestVersion, Key: key, Layout: Layout{Kind: LayoutReplicated}}
	c := NewChunker(r, p)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("building manifest: %w", err)
		}
		data, err := c.Next()
		if err == io.EOF {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		ref := ChunkRef{CID: SumChunk(data), Offset: m.Size, Length: uint32(len(data))}
		if err := fn(ref, data); err != nil {
			return nil, err
		}
		m.Chunks = append(m.Chunks, ref)
		m.Size += int64(len(data))
	}
}
