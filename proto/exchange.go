package proto

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ExchangeProtocolFor returns the chunk exchange protocol ID of one swarm,
// "/annex-swarm/<swarmID>/xchg/1.0.0". swarmID MUST be non-empty and MUST
// NOT contain '/'; the caller passes the adopted definition's identifier.
func ExchangeProtocolFor(swarmID string) protocol.ID {
	return protocol.ID("/annex-swarm/" + swarmID + "/xchg/1.0.0")
}

// HaveRequest asks which chunks of the manifest Root the responder holds.
// The answer is a HaveResponse or an ErrorResponse (CodeNotFound when the
// responder does not know the manifest).
type HaveRequest struct {
	ID   uint64  `cbor:"1,keyasint"`
	Root cid.Cid `cbor:"2,keyasint"`
	// Over says the asker, a repair round's survey, counted more copies
	// of Root than the rules' target at its last check: a holder that
	// settled Root checks it again at its next round, since it may be
	// the one to trim (docs/REPLICATION.md "Repair", step 6). Absent
	// (false) in every other request; older members ignore it.
	Over bool `cbor:"3,keyasint,omitempty"`
}

// HaveResponse lists the chunks of Root the responder holds.
type HaveResponse struct {
	ID   uint64  `cbor:"1,keyasint"`
	Root cid.Cid `cbor:"2,keyasint"`
	// Complete is true exactly when every bit of Have is set.
	Complete bool `cbor:"3,keyasint"`
	// NumChunks is the number of chunks the manifest lists.
	NumChunks uint32 `cbor:"4,keyasint"`
	// Have has bit i set when chunk i of the manifest is held and verified.
	Have Bitfield `cbor:"5,keyasint"`
	// Shards has bit i set when the responder holds shard set i of a coded
	// Root, every shard verified (docs/ERASURE.md "Wire additions"); 0 for
	// a replicated content or none held. Have and Complete keep describing
	// whole chunks.
	Shards uint32 `cbor:"6,keyasint,omitempty"`
}

// ManifestRequest asks for the encoded manifest whose CID is Root.
type ManifestRequest struct {
	ID   uint64  `cbor:"1,keyasint"`
	Root cid.Cid `cbor:"2,keyasint"`
}

// ManifestResponse carries the encoded manifest Root. The receiver MUST
// check that Data hashes to Root before using it.
type ManifestResponse struct {
	ID   uint64  `cbor:"1,keyasint"`
	Root cid.Cid `cbor:"2,keyasint"`
	// Data is the manifest, 1 to MaxManifestSize bytes.
	Data Payload `cbor:"3,keyasint"`
}

// BlockRequest asks for one chunk.
type BlockRequest struct {
	ID  uint64  `cbor:"1,keyasint"`
	CID cid.Cid `cbor:"2,keyasint"`
	// Verify reports that the requester received bytes for CID from this
	// responder that did not hash to it: the responder MUST verify its copy
	// before answering, quarantine it when corrupt and then answer
	// NotFound (docs/PROTOCOL.md "BlockRequest"). Absent means false.
	Verify bool `cbor:"3,keyasint,omitempty"`
}

// BlockResponse carries one chunk. The receiver MUST check that Data hashes
// to CID before using it.
type BlockResponse struct {
	ID  uint64  `cbor:"1,keyasint"`
	CID cid.Cid `cbor:"2,keyasint"`
	// Data is the chunk, at most MaxChunkSize bytes.
	Data Payload `cbor:"3,keyasint"`
}

// ErrorResponse answers the request ID when it cannot be served. It is valid
// on both the exchange and the rules protocol (ID 0 there).
type ErrorResponse struct {
	ID   uint64    `cbor:"1,keyasint"`
	Code ErrorCode `cbor:"2,keyasint"`
	// Message is a human-readable detail, at most MaxErrorMessage bytes.
	Message string `cbor:"3,keyasint"`
}

// Error makes an ErrorResponse usable as a Go error on the requester side.
func (m *ErrorResponse) Error() string {
	if m.Message == "" {
		return "peer: " + m.Code.String()
	}
	return "peer: " + m.Code.String() + ": " + m.Message
}

// Bye says that its sender will send no more requests on this stream. It has
// no fields.
type Bye struct{}

// Type implements Msg.
func (*HaveRequest) Type() MsgType { return TypeHaveRequest }

// Type implements Msg.
func (*HaveResponse) Type() MsgType { return TypeHaveResponse }

// Type implements Msg.
func (*ManifestRequest) Type() MsgType { return TypeManifestRequest }

// Type implements Msg.
func (*ManifestResponse) Type() MsgType { return TypeManifestResponse }

// Type implements Msg.
func (*BlockRequest) Type() MsgType { return TypeBlockRequest }

// Type implements Msg.
func (*BlockResponse) Type() MsgType { return TypeBlockResponse }

// Type implements Msg.
func (*ErrorResponse) Type() MsgType { return TypeError }

// Type implements Msg.
func (*Bye) Type() MsgType { return TypeBye }

// Validate implements Msg.
func (m *HaveRequest) Validate() error { return validCID("HaveRequest root", m.Root) }

// Validate implements Msg: the bitfield has the length and padding NumChunks
// requires and Complete agrees with it.
func (m *HaveResponse) Validate() error {
	if err := validCID("HaveResponse root", m.Root); err != nil {
		return err
	}
	if m.NumChunks > MaxNumChunks {
		return fmt.Errorf("HaveResponse: %d chunks over %d: %w", m.NumChunks, MaxNumChunks, ErrInvalid)
	}
	if err := m.Have.Validate(int(m.NumChunks)); err != nil {
		return fmt.Errorf("HaveResponse: %w", err)
	}
	if full := m.Have.Count() == int(m.NumChunks); full != m.Complete {
		return fmt.Errorf("HaveResponse: complete=%t but %d of %d chunks: %w", m.Complete, m.Have.Count(), m.NumChunks, ErrInvalid)
	}
	return nil
}

// Validate implements Msg.
func (m *ManifestRequest) Validate() error { return validCID("ManifestRequest root", m.Root) }

// Validate implements Msg.
func (m *ManifestResponse) Validate() error {
	if err := validCID("ManifestResponse root", m.Root); err != nil {
		return err
	}
	return validLen("ManifestResponse data", len(m.Data), 1, MaxManifestSize)
}

// Validate implements Msg.
func (m *BlockRequest) Validate() error { return validCID("BlockRequest", m.CID) }

// Validate implements Msg.
func (m *BlockResponse) Validate() error {
	if err := validCID("BlockResponse", m.CID); err != nil {
		return err
	}
	return validLen("BlockResponse data", len(m.Data), 0, MaxChunkSize)
}

// Validate implements Msg.

// Validate implements Msg.
func (m *ErrorResponse) Validate() error {
	if m.Code == 0 {
		return fmt.Errorf("ErrorResponse: code 0: %w", ErrInvalid)
	}
	return validLen("ErrorResponse message", len(m.Message), 0, MaxErrorMessage)
}

// Validate implements Msg.
func (*Bye) Validate() error { return nil }

func (*HaveRequest) sealed()      {}
func (*HaveResponse) sealed()     {}
func (*ManifestRequest) sealed()  {}
func (*ManifestResponse) sealed() {}
func (*BlockRequest) sealed()     {}
func (*BlockResponse) sealed()    {}
func (*ErrorResponse) sealed()    {}
func (*Bye) sealed()              {}
