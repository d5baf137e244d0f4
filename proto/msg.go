package proto

import (
	"fmt"

	"github.com/ipfs/go-cid"
)

// MsgType is the first byte of a frame body; it says which message the CBOR
// map that follows encodes. See docs/PROTOCOL.md "Message types".
type MsgType byte

// Message types of the chunk exchange protocol.
const (
	TypeHaveRequest      MsgType = 0x01
	TypeHaveResponse     MsgType = 0x02
	TypeManifestRequest  MsgType = 0x03
	TypeManifestResponse MsgType = 0x04
	TypeBlockRequest     MsgType = 0x05
	TypeBlockResponse    MsgType = 0x06
	// 0x07 and 0x08 were PushBlock and PushAck; they are reserved and
	// never reused (docs/PROTOCOL.md "Message types").
	TypeError MsgType = 0x09
	TypeBye   MsgType = 0x0a
)

// Message types of the rules exchange protocol (ErrorResponse and Bye are
// shared with the chunk exchange).
const (
	TypeHello    MsgType = 0x20
	TypeGetRules MsgType = 0x21
	TypeRules    MsgType = 0x22
)

// Bounds on fields other than the large payloads. See docs/PROTOCOL.md "Bounds".
const (
	// MaxCIDSize is the largest binary CID accepted in any message.
	MaxCIDSize = 128
	// MaxNumChunks is the largest chunk count a HaveResponse may declare. An
	// 8 MiB manifest cannot list more chunks (a CID alone is over 32 bytes),
	// so it never binds a valid manifest; it bounds the bitfield to 128 KiB.
	MaxNumChunks = 1 << 20
	// MaxErrorMessage is the longest ErrorResponse message, in bytes.
	MaxErrorMessage = 256
	// MaxSwarmIDSize is the longest swarm identifier in a Hello, in bytes.
	MaxSwarmIDSize = 128
)

// Msg is one message of the exchange or rules protocol. Only the pointer
// types of this package implement it (*HaveRequest, *BlockResponse, ...).
type Msg interface {
	// Type returns the message type byte.
	Type() MsgType
	// Validate checks the message against the rules of its type; errors wrap
	// ErrInvalid.
	Validate() error
	// sealed keeps implementations inside this package, so that every Msg
	// has a type byte and a bound.
	sealed()
}

// String returns the message type's name, for logs and errors.
func (t MsgType) String() string {
	switch t {
	case TypeHaveRequest:
		return "HaveRequest"
	case TypeHaveResponse:
		return "HaveResponse"
	case TypeManifestRequest:
		return "ManifestRequest"
	case TypeManifestResponse:
		return "ManifestResponse"
	case TypeBlockRequest:
		return "BlockRequest"
	case TypeBlockResponse:
		return "BlockResponse"
	case TypeError:
		return "ErrorResponse"
	case TypeBye:
		return "Bye"
	case TypeHello:
		return "Hello"
	case TypeGetRules:
		return "GetRules"
	case TypeRules:
		return "Rules"
	}
	if s := placeTypeName(t); s != "" {
		return s
	}
	if s := auditTypeName(t); s != "" {
		return s
	}
	return fmt.Sprintf("MsgType(%#x)", byte(t))
}

// newMsg returns a zero message of type t, or nil if t is not defined.
func newMsg(t MsgType) Msg {
	switch t {
	case TypeHaveRequest:
		return new(HaveRequest)
	case TypeHaveResponse:
		return new(HaveResponse)
	case TypeManifestRequest:
		return new(ManifestRequest)
	case TypeManifestResponse:
		return new(ManifestResponse)
	case TypeBlockRequest:
		return new(BlockRequest)
	case TypeBlockResponse:
		return new(BlockResponse)
	case TypeError:
		return new(ErrorResponse)
	case TypeBye:
		return new(Bye)
	case TypeHello:
		return new(Hello)
	case TypeGetRules:
		return new(GetRules)
	case TypeRules:
		return new(Rules)
	}
	if m := newPlaceMsg(t); m != nil {
		return m
	}
	return newAuditMsg(t)
}

// MaxBodySize returns the bound on a frame body (type byte included) that
// carries a message of type t, or 0 if t is not defined. Readers check it
// before allocating the body.
func (t MsgType) MaxBodySize() int {
	switch t {
	case TypeManifestResponse:
		return MaxManifestFrameSize
	case TypeBlockResponse:
		return MaxFrameSize
	case TypeHaveResponse:
		return MaxNumChunks/8 + FrameOverhead
	case TypeRules:
		return MaxRulesSize + FrameOverhead
	case TypeHaveRequest, TypeManifestRequest, TypeBlockRequest,
		TypeError, TypeBye, TypeHello, TypeGetRules:
		return FrameOverhead
	}
	if n := placeBodySize(t); n > 0 {
		return n
	}
	return auditBodySize(t)
}

// bodyBound is the bound function a Codec hands to its FrameReader.
func bodyBound(first byte) (int, error) {
	if n := MsgType(first).MaxBodySize(); n > 0 {
		return n, nil
	}
	return 0, fmt.Errorf("reading frame: type %#x: %w", first, ErrUnknownType)
}

// ErrorCode says why a request failed. Receivers MUST treat a code they do
// not know as CodeInternal.
type ErrorCode uint16

// Error codes of ErrorResponse. See docs/PROTOCOL.md "ErrorResponse".
const (
	// CodeNotFound: the responder does not hold the requested object.
	CodeNotFound ErrorCode = 1
	// CodeRefused: the responder will not serve or accept this (not a member,
	// quota reached, policy).
	CodeRefused ErrorCode = 2
	// CodeBusy: the responder is overloaded; try later or elsewhere.
	CodeBusy ErrorCode = 3
	// CodeInternal: the responder failed (disk error, ...).
	CodeInternal ErrorCode = 4
	// CodeBadRequest: the request was well-formed but makes no sense here.
	CodeBadRequest ErrorCode = 5
	// CodeNoSpace: the responder refuses to store this for lack of room
	// (its storage limit or its disk).
	CodeNoSpace ErrorCode = 6
	// CodeRemoved: the responder refuses to store content whose newest
	// removal record is a removal (docs/REPLICATION.md "Removal").
	CodeRemoved ErrorCode = 7
)

// String returns the code's name.
func (c ErrorCode) String() string {
	switch c {
	case CodeNotFound:
		return "not found"
	case CodeRefused:
		return "refused"
	case CodeBusy:
		return "busy"
	case CodeInternal:
		return "internal error"
	case CodeBadRequest:
		return "bad request"
	case CodeNoSpace:
		return "no space"
	case CodeRemoved:
		return "removed"
	}
	return fmt.Sprintf("error code %d", uint16(c))
}

// validCID checks that c is set and within MaxCIDSize.
func validCID(what string, c cid.Cid) error {
	if !c.Defined() {
		return fmt.Errorf("%s: missing CID: %w", what, ErrInvalid)
	}
	if c.ByteLen() > MaxCIDSize {
		return fmt.Errorf("%s: CID of %d bytes over %d: %w", what, c.ByteLen(), MaxCIDSize, ErrInvalid)
	}
	return nil
}

// validLen checks that a byte field's length is within [min, max].
func validLen(what string, n, min, max int) error {
	if n < min || n > max {
		return fmt.Errorf("%s: length %d outside [%d, %d]: %w", what, n, min, max, ErrInvalid)
	}
	return nil
}
