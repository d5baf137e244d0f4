package proto

import (
	"crypto/sha256"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// This file defines the audit protocol's messages (docs/PROTOCOL.md "Audit
// protocol"): a challenge to prove that a chunk is still held, and its
// answer.

// Message types of the audit protocol (ErrorResponse and Bye are shared
// with the chunk exchange).
const (
	TypeAuditRequest  MsgType = 0x40
	TypeAuditResponse MsgType = 0x41
)

// Bounds of the audit protocol's fields.
const (
	// AuditNonceSize is the length of a challenge's nonce.
	AuditNonceSize = 32
	// AuditProofSize is the length of a proof (a SHA-256 digest).
	AuditProofSize = sha256.Size
)

// AuditProtocolFor returns the audit protocol ID of one swarm,
// "/annex-swarm/<swarmID>/audit/1.0.0", with the same constraints on
// swarmID as ExchangeProtocolFor.
func AuditProtocolFor(swarmID string) protocol.ID {
	return protocol.ID("/annex-swarm/" + swarmID + "/audit/1.0.0")
}

// AuditRequest challenges the responder to prove that it holds Chunk, a
// chunk of the content Root, by hashing it with a fresh Nonce (AuditProof).
type AuditRequest struct {
	ID    uint64  `cbor:"1,keyasint"`
	Root  cid.Cid `cbor:"2,keyasint"`
	Chunk cid.Cid `cbor:"3,keyasint"`
	Nonce []byte  `cbor:"4,keyasint"`
}

// AuditState is the answer an AuditResponse gives.
type AuditState uint8

// Answers to a challenge.
const (
	// AuditHeld: the chunk was read and verified; Proof is set.
	AuditHeld AuditState = 1
	// AuditMissing: the responder does not hold the chunk (or found it
	// corrupt and quarantined it); Proof is empty.
	AuditMissing AuditState = 2
)

// AuditResponse answers the AuditRequest with the same ID.
type AuditResponse struct {
	ID    uint64     `cbor:"1,keyasint"`
	State AuditState `cbor:"2,keyasint"`
	Proof []byte     `cbor:"3,keyasint"`
}

// auditDomain separates audit proofs from any other use of SHA-256.
const auditDomain = "annex-swarm audit v1\n"

// AuditProof is the proof of holding data under nonce:
// SHA-256(domain ‖ nonce ‖ data).
func AuditProof(nonce, data []byte) []byte {
	h := sha256.New()
	h.Write([]byte(auditDomain))
	h.Write(nonce)
	h.Write(data)
	return h.Sum(nil)
}

// Type implements Msg.
func (*AuditRequest) Type() MsgType { return TypeAuditRequest }

// Type implements Msg.
func (*AuditResponse) Type() MsgType { return TypeAuditResponse }

// Validate implements Msg.
func (m *AuditRequest) Validate() error {
	if err := validCID("AuditRequest root", m.Root); err != nil {
		return err
	}
	if err := validCID("AuditRequest chunk", m.Chunk); err != nil {
		return err
	}
	return validLen("AuditRequest nonce", len(m.Nonce), AuditNonceSize, AuditNonceSize)
}

// Validate implements Msg.
func (m *AuditResponse) Validate() error {
	switch m.State {
	case AuditHeld:
		return validLen("AuditResponse proof", len(m.Proof), AuditProofSize, AuditProofSize)
	case AuditMissing:
		return validLen("AuditResponse proof", len(m.Proof), 0, 0)
	}
	return fmt.Errorf("AuditResponse: state %d: %w", m.State, ErrInvalid)
}

func (*AuditRequest) sealed()  {}
func (*AuditResponse) sealed() {}

// auditTypeName names the audit message types, "" for others.
func auditTypeName(t MsgType) string {
	switch t {
	case TypeAuditRequest:
		return "AuditRequest"
	case TypeAuditResponse:
		return "AuditResponse"
	}
	return ""
}

// newAuditMsg returns a zero audit message of type t, or nil.
func newAuditMsg(t MsgType) Msg {
	switch t {
	case TypeAuditRequest:
		return new(AuditRequest)
	case TypeAuditResponse:
		return new(AuditResponse)
	}
	return nil
}

// auditBodySize is MaxBodySize for the audit message types, 0 for others.
// Both messages are a few hundred bytes at most.
func auditBodySize(t MsgType) int {
	if auditTypeName(t) != "" {
		return FrameOverhead
	}
	return 0
}
