package proto

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// This file defines the replication protocol's messages (docs/PROTOCOL.md
// "Replication protocol"): placement requests, their status, and signed removal
// records.

// Message types of the replication protocol (ErrorResponse and Bye are
// shared with the chunk exchange).
const (
	TypePlaceRequest MsgType = 0x30
	TypePlaceStart   MsgType = 0x31
	TypePlaceStatus  MsgType = 0x32
	TypeRemoval      MsgType = 0x33
)

// Bounds of the replication protocol's fields.
const (
	// MaxPeerIDSize is the longest binary peer ID in a Removal.
	MaxPeerIDSize = 128
	// MaxSignatureSize is the longest signature in a Removal.
	MaxSignatureSize = 512
	// MaxInlineSize is the largest content a PlaceRequest may carry inline.
	MaxInlineSize = 256 << 10
)

// ReplicationProtocolFor returns the replication protocol ID of one swarm,
// "/annex-swarm/<swarmID>/repl/1.0.0", with the same constraints on swarmID
// as ExchangeProtocolFor.
func ReplicationProtocolFor(swarmID string) protocol.ID {
	return protocol.ID("/annex-swarm/" + swarmID + "/repl/1.0.0")
}

// PlaceRequest asks the responder to hold a verified full copy of Root. The
// responder answers PlaceStatus messages (Ready when Wait is set, then
// Queued/Filling as keep-alives) ending with Done, or an ErrorResponse
// (CodeRefused: no space, removed, or not a storage member).
type PlaceRequest struct {
	ID   uint64  `cbor:"1,keyasint"`
	Root cid.Cid `cbor:"2,keyasint"`
	// Manifest is the encoded manifest of Root, or empty: the responder then
	// fetches it. It MUST hash to Root.
	Manifest Payload `cbor:"3,keyasint"`
	// Wait asks the responder to store the manifest, answer Ready, and wait
	// for PlaceStart before fetching chunks (so that every new holder knows
	// the manifest before any starts fetching).
	Wait bool `cbor:"4,keyasint"`
	// Data is the whole content (at most MaxInlineSize bytes), or empty: the
	// responder then fetches the chunks. With Data, Manifest MUST be present
	// and Wait false; the responder checks every chunk it cuts from Data at
	// the manifest's offsets against the manifest, as any fetched chunk.
	Data Payload `cbor:"5,keyasint"`
	// Shards, when not 0, asks for shard set i of a coded (version 2)
	// content instead of a whole copy: exactly bit i is set, i <
	// MaxShardSets (docs/ERASURE.md "Wire additions"). Manifest MUST then
	// be present and Data and Wait absent.
	Shards uint32 `cbor:"6,keyasint,omitempty"`
	// Restore, when set, is the requester's Restore record of Root (a put
	// of a content removed before): the responder keeps it, durably,
	// before it answers Done, and does not refuse Root as removed when
	// this record wins (docs/REPLICATION.md "Restore carried in the
	// placement"). It MUST be a restore of Root. A responder that does
	// not know the field ignores it and may refuse the content as removed.
	Restore *Removal `cbor:"7,keyasint,omitempty"`
}

// MaxShardSets bounds the shard indexes a PlaceRequest or HaveResponse may
// name: bits 0 to 31 of Shards (chunk.MaxShards).
const MaxShardSets = 32

// ShardIndex returns the one shard set a PlaceRequest asks for, or -1 when
// it asks for a whole copy.
func (m *PlaceRequest) ShardIndex() int {
	if m.Shards == 0 {
		return -1
	}
	return bits.TrailingZeros32(m.Shards)
}

// PlaceStart lets a responder that answered Ready start fetching.
type PlaceStart struct {
	ID uint64 `cbor:"1,keyasint"`
}

// PlaceState is the state a PlaceStatus reports.
type PlaceState uint8

// States of a placement.
const (
	// PlaceReady: the manifest is stored; waiting for PlaceStart.
	PlaceReady PlaceState = 1
	// PlaceQueued: waiting for a free fetch slot.
	PlaceQueued PlaceState = 2
	// PlaceFilling: fetching; Bytes of Total held.
	PlaceFilling PlaceState = 3
	// PlaceDone: a verified full copy is held. The last message.
	PlaceDone PlaceState = 4
)

// PlaceStatus reports the progress of a placement.
type PlaceStatus struct {
	ID    uint64     `cbor:"1,keyasint"`
	State PlaceState `cbor:"2,keyasint"`
	Bytes uint64     `cbor:"3,keyasint"`
	Total uint64     `cbor:"4,keyasint"`
}

// Removal is a signed removal record (docs/REPLICATION.md "Removal"): the
// member Issuer asks every member to delete Root, or, with Restore set,
// cancels an earlier removal of Root (a later put). Of two records for one
// root the one with the larger Time wins.
type Removal struct {
	Root cid.Cid `cbor:"1,keyasint"`
	// Issuer is the binary peer ID of the signing member.
	Issuer []byte `cbor:"2,keyasint"`
	// Time is when the record was made, in Unix nanoseconds.
	Time    int64 `cbor:"3,keyasint"`
	Restore bool  `cbor:"4,keyasint"`
	// Sig is the Issuer's libp2p signature over SigningBytes.
	Sig []byte `cbor:"5,keyasint"`
	// Successor, when defined, says that Root's bytes now live as this
	// other content ("moved to", a re-coding: docs/REPLICATION.md
	// "Removal", docs/ERASURE.md "Re-coding"). Only a removal (Restore
	// false) has one; absent in plain removals and restores.
	Successor cid.Cid `cbor:"6,keyasint,omitempty"`
}

// removalDomain separates removal signatures from any other use of a key.
const removalDomain = "annex-swarm removal v1\n"

// SigningBytes returns the bytes the Issuer signs: the domain string, then
// the root's binary CID, the issuer, the time (8 bytes big-endian), the
// restore flag (one byte) and, only when Successor is defined, the
// successor's binary CID, each variable field preceded by its length as 2
// bytes big-endian. A record without a successor signs exactly the bytes
// it signed before the field existed, so older records still verify.
func (m *Removal) SigningBytes() []byte {
	root, next := m.Root.Bytes(), m.Successor.Bytes()
	b := make([]byte, 0, len(removalDomain)+6+len(root)+len(m.Issuer)+9+len(next))
	b = append(b, removalDomain...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(root)))
	b = append(b, root...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(m.Issuer)))
	b = append(b, m.Issuer...)
	b = binary.BigEndian.AppendUint64(b, uint64(m.Time))
	if m.Restore {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	if m.Successor.Defined() {
		b = binary.BigEndian.AppendUint16(b, uint16(len(next)))
		b = append(b, next...)
	}
	return b
}

// Type implements Msg.
func (*PlaceRequest) Type() MsgType { return TypePlaceRequest }

// Type implements Msg.
func (*PlaceStart) Type() MsgType { return TypePlaceStart }

// Type implements Msg.
func (*PlaceStatus) Type() MsgType { return TypePlaceStatus }

// Type implements Msg.
func (*Removal) Type() MsgType { return TypeRemoval }

// Validate implements Msg.
func (m *PlaceRequest) Validate() error {
	if err := validCID("PlaceRequest root", m.Root); err != nil {
		return err
	}
	if err := validLen("PlaceRequest manifest", len(m.Manifest), 0, MaxManifestSize); err != nil {
		return err
	}
	if err := validLen("PlaceRequest data", len(m.Data), 0, MaxInlineSize); err != nil {
		return err
	}
	if len(m.Data) > 0 && (len(m.Manifest) == 0 || m.Wait) {
		return fmt.Errorf("%w: PlaceRequest data without a manifest, or with wait", ErrInvalid)
	}
	if m.Shards != 0 && (bits.OnesCount32(m.Shards) != 1 || len(m.Manifest) == 0 || len(m.Data) > 0 || m.Wait) {
		return fmt.Errorf("%w: PlaceRequest shards %#x: want one set, with a manifest, without data or wait", ErrInvalid, m.Shards)
	}
	if m.Restore != nil {
		if err := m.Restore.Validate(); err != nil {
			return fmt.Errorf("PlaceRequest restore: %w", err)
		}
		if !m.Restore.Restore || !m.Restore.Root.Equals(m.Root) {
			return fmt.Errorf("%w: PlaceRequest restore: want a restore record of the root placed", ErrInvalid)
		}
	}
	return nil
}

// Validate implements Msg.
func (*PlaceStart) Validate() error { return nil }

// Validate implements Msg.
func (m *PlaceStatus) Validate() error {
	if m.State < PlaceReady || m.State > PlaceDone {
		return fmt.Errorf("PlaceStatus: state %d: %w", m.State, ErrInvalid)
	}
	if m.Bytes > m.Total {
		return fmt.Errorf("PlaceStatus: %d of %d bytes: %w", m.Bytes, m.Total, ErrInvalid)
	}
	return nil
}

// Validate implements Msg.
func (m *Removal) Validate() error {
	if err := validCID("Removal root", m.Root); err != nil {
		return err
	}
	if err := validLen("Removal issuer", len(m.Issuer), 1, MaxPeerIDSize); err != nil {
		return err
	}
	if m.Time <= 0 {
		return fmt.Errorf("Removal: time %d: %w", m.Time, ErrInvalid)
	}
	if m.Successor.Defined() {
		if err := validCID("Removal successor", m.Successor); err != nil {
			return err
		}
		if m.Restore || m.Successor.Equals(m.Root) {
			return fmt.Errorf("%w: Removal successor %s: want a removal, of another root", ErrInvalid, m.Successor)
		}
	}
	return validLen("Removal signature", len(m.Sig), 1, MaxSignatureSize)
}

func (*PlaceRequest) sealed() {}
func (*PlaceStart) sealed()   {}
func (*PlaceStatus) sealed()  {}
func (*Removal) sealed()      {}

// placeTypeName names the replication message types, "" for others.
func placeTypeName(t MsgType) string {
	switch t {
	case TypePlaceRequest:
		return "PlaceRequest"
	case TypePlaceStart:
		return "PlaceStart"
	case TypePlaceStatus:
		return "PlaceStatus"
	case TypeRemoval:
		return "Removal"
	}
	return ""
}

// newPlaceMsg returns a zero replication message of type t, or nil.
func newPlaceMsg(t MsgType) Msg {
	switch t {
	case TypePlaceRequest:
		return new(PlaceRequest)
	case TypePlaceStart:
		return new(PlaceStart)
	case TypePlaceStatus:
		return new(PlaceStatus)
	case TypeRemoval:
		return new(Removal)
	}
	return nil
}

// placeBodySize is MaxBodySize for the replication message types, 0 for others.
func placeBodySize(t MsgType) int {
	switch t {
	case TypePlaceRequest:
		return MaxManifestFrameSize
	case TypePlaceStart, TypePlaceStatus, TypeRemoval:
		return FrameOverhead
	}
	return 0
}
