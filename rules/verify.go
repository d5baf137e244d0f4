package rules

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// The verifier entry points implement docs/RULES.md#signatures and
// docs/RULES.md#version-chain. Each returns a new Definition and never
// changes the one it is called on, so a caller that gets an error keeps its
// current definition as it was.

var beginSigned = []byte("-----BEGIN PGP SIGNED MESSAGE-----")

// acceptedHashes are the signature hashes a document may be signed with.
var acceptedHashes = map[crypto.Hash]bool{
	crypto.SHA256: true, crypto.SHA384: true, crypto.SHA512: true,
	crypto.SHA3_256: true, crypto.SHA3_512: true,
}

// Verify checks a clear-signed document on its own: well-formed, and signed
// by one of the admin keys it lists itself. For a genesis (version 1) the ID
// must also be derived from the document's own fields. A document of a later
// version is self-consistent only; to follow a swarm, use VerifyNext from
// the current definition, or VerifyGenesis against a known swarm ID.
func Verify(signed []byte) (*Definition, error) {
	block, err := decodeSigned(signed)
	if err != nil {
		return nil, err
	}
	d, err := Parse(block.Plaintext)
	if err != nil {
		return nil, err
	}
	signer, err := d.checkSignature(block)
	if err != nil {
		return nil, err
	}
	return withSigned(d, signed, signer), nil
}

// VerifyGenesis checks a genesis against the swarm ID it must have (the
// trust anchor a member stores when it joins): Verify, plus version 1 and
// the derived ID equal to id.
func VerifyGenesis(signed []byte, id ID) (*Definition, error) {
	d, err := Verify(signed)
	if err != nil {
		return nil, err
	}
	if d.Version != 1 {
		return nil, fmt.Errorf("%w: version %d is not a genesis (version 1)", ErrInvalid, d.Version)
	}
	if d.ID != id {
		return nil, fmt.Errorf("%w: document is swarm %s, want %s", ErrSwarmID, d.ID, id)
	}
	return d, nil
}

// VerifyNext checks a newer version against d, the current definition: same
// swarm ID, version greater than d's (gaps allowed, so a member that missed
// versions catches up in one step), swarm name and creation time unchanged,
// and signed by an admin key of d. The new version need not list its signer
// as an admin (an admin may hand over to another key).
func (d *Definition) VerifyNext(signed []byte) (*Definition, error) {
	block, err := decodeSigned(signed)
	if err != nil {
		return nil, err
	}
	next, err := Parse(block.Plaintext)
	if err != nil {
		return nil, err
	}
	if err := d.checkSuccessor(next); err != nil {
		return nil, err
	}
	signer, err := d.checkSignature(block)
	if err != nil {
		return nil, err
	}
	return withSigned(next, signed, signer), nil
}

// VerifyChain applies VerifyNext to each document in turn, starting from d,
// and returns the last definition. It stops at the first error.
func (d *Definition) VerifyChain(docs [][]byte) (*Definition, error) {
	cur := d
	for i, doc := range docs {
		next, err := cur.VerifyNext(doc)
		if err != nil {
			return nil, fmt.Errorf("chain document %d: %w", i+1, err)
		}
		cur = next
	}
	return cur, nil
}

// checkSuccessor checks everything but the signature of next against d.
func (d *Definition) checkSuccessor(next *Definition) error {
	if next.ID != d.ID {
		return fmt.Errorf("%w: document is swarm %s, current is %s", ErrSwarmID, next.ID, d.ID)
	}
	if next.Version <= d.Version {
		return fmt.Errorf("%w: version %d, current is %d", ErrReplay, next.Version, d.Version)
	}
	if next.Swarm != d.Swarm || !next.Created.Equal(d.Created) {
		return fmt.Errorf("%w: swarm name and created never change (was %q %s, now %q %s)",
			ErrInvalid, d.Swarm, formatTime(d.Created), next.Swarm, formatTime(next.Created))
	}
	return nil
}

// decodeSigned finds the one clear-signed message that must make up the
// whole of signed.
func decodeSigned(signed []byte) (*clearsign.Block, error) {
	if len(signed) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: %d bytes, the bound is %d", ErrTooLarge, len(signed), MaxDocumentSize)
	}
	start := bytes.Index(signed, beginSigned)
	if start < 0 {
		return nil, fmt.Errorf("%w: no %q line", ErrNotSigned, beginSigned)
	}
	if len(bytes.TrimSpace(signed[:start])) > 0 {
		return nil, fmt.Errorf("%w: data before the signed message", ErrArmor)
	}
	block, rest := clearsign.Decode(signed[start:])
	if block == nil {
		return nil, fmt.Errorf("%w: the clear-signed message or its signature is incomplete", ErrArmor)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%w: data after the signature", ErrArmor)
	}
	return block, nil
}

// checkSignature checks that block is signed by an admin key of d and
// returns the signer's fingerprint.
func (d *Definition) checkSignature(block *clearsign.Block) (string, error) {
	keyring, err := d.keyring()
	if err != nil {
		return "", err
	}
	sigBody, err := io.ReadAll(io.LimitReader(block.ArmoredSignature.Body, MaxDocumentSize))
	if err != nil {
		return "", fmt.Errorf("%w: signature armor: %v", ErrArmor, err)
	}
	sig, signer, err := openpgp.VerifyDetachedSignature(keyring, bytes.NewReader(block.Bytes), bytes.NewReader(sigBody), &packet.Config{})
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return "", fmt.Errorf("%w: the signing key is not an admin of version %d", ErrNotAdmin, d.Version)
	case err != nil:
		return "", fmt.Errorf("%w: %v", ErrBadSignature, err)
	case sig == nil || signer == nil:
		return "", fmt.Errorf("%w: no signature", ErrBadSignature)
	case !acceptedHashes[sig.Hash]:
		return "", fmt.Errorf("%w: weak signature hash %v", ErrBadSignature, sig.Hash)
	}
	return fingerprint(signer), nil
}

// withSigned records the document d was verified from and its signer.
func withSigned(d *Definition, signed []byte, signer string) *Definition {
	d.signed = bytes.Clone(signed)
	d.signer = signer
	return d
}
