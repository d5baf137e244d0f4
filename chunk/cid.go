package chunk

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	cid "github.com/ipfs/go-cid"
	multihash "github.com/multiformats/go-multihash"
)

// CodecCBOR is the multicodec of a manifest's CID (plain "cbor", 0x51): the
// manifest is CBOR but not DAG-CBOR, its links are byte strings, not tag 42.
const CodecCBOR = 0x51

// ErrCorrupt is returned when bytes do not match the CID they are stored or
// sent under. For a stored chunk it means the copy on disk went bad; the
// store has already quarantined it.
var ErrCorrupt = errors.New("chunk: content does not match its CID")

// ErrBadCID is returned for a CID that is not one of the two forms annex-swarm
// uses: CIDv1 raw sha2-256 for chunks and CIDv1 cbor sha2-256 for manifests.
var ErrBadCID = errors.New("chunk: unsupported CID")

// SumChunk returns the CID of a chunk's bytes: CIDv1, raw codec, sha2-256.
func SumChunk(data []byte) cid.Cid {
	return sumCID(cid.Raw, data)
}

func sumCID(codec uint64, data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil { // only for an unknown code or a wrong length: a bug
		panic(fmt.Sprintf("encoding sha2-256 multihash: %v", err))
	}
	return cid.NewCidV1(codec, mh)
}

// VerifyChunk checks data against a chunk CID. It returns an error wrapping
// ErrBadCID if id is not a chunk CID and one wrapping ErrCorrupt if the hash
// differs.
func VerifyChunk(id cid.Cid, data []byte) error {
	if err := checkForm(id, cid.Raw); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if !bytes.Equal(digest(id), sum[:]) {
		return fmt.Errorf("verifying chunk %s: %w", id, ErrCorrupt)
	}
	return nil
}

// IsChunkCID reports whether id has the form of a chunk CID.
func IsChunkCID(id cid.Cid) bool { return checkForm(id, cid.Raw) == nil }

// IsManifestCID reports whether id has the form of a manifest CID.
func IsManifestCID(id cid.Cid) bool { return checkForm(id, CodecCBOR) == nil }

// ParseCID parses the string form of a chunk or manifest CID and refuses
// every other kind of CID with an error wrapping ErrBadCID.
func ParseCID(s string) (cid.Cid, error) {
	if len(s) > 128 {
		return cid.Undef, fmt.Errorf("parsing CID: %w: %d characters", ErrBadCID, len(s))
	}
	id, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("parsing CID %q: %w: %v", s, ErrBadCID, err)
	}
	if !IsChunkCID(id) && !IsManifestCID(id) {
		return cid.Undef, fmt.Errorf("parsing CID %q: %w", s, ErrBadCID)
	}
	return id, nil
}

// cidFromBytes decodes a binary CID of the given codec.
func cidFromBytes(b []byte, codec uint64) (cid.Cid, error) {
	n, id, err := cid.CidFromBytes(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %v", ErrBadCID, err)
	}
	if n != len(b) {
		return cid.Undef, fmt.Errorf("%w: %d trailing bytes", ErrBadCID, len(b)-n)
	}
	if err := checkForm(id, codec); err != nil {
		return cid.Undef, err
	}
	return id, nil
}

// checkForm requires CIDv1 with the codec and a 32-byte sha2-256 multihash.
func checkForm(id cid.Cid, codec uint64) error {
	if !id.Defined() {
		return fmt.Errorf("%w: undefined", ErrBadCID)
	}
	p := id.Prefix()
	if p.Version != 1 || p.Codec != codec || p.MhType != multihash.SHA2_256 || p.MhLength != sha256.Size {
		return fmt.Errorf("%w: %s is not CIDv1/%#x/sha2-256", ErrBadCID, id, codec)
	}
	return nil
}

// digest returns the sha2-256 digest inside a CID already checked by checkForm.
func digest(id cid.Cid) []byte {
	h := id.Hash()
	return h[len(h)-sha256.Size:]
}
