package proto

import (
	"bytes"
	"fmt"
	"io"

	"github.com/fxamacker/cbor/v2"
)

// Message encoding, as specified in docs/PROTOCOL.md "Message encoding": a
// frame body is the type byte followed by one deterministic CBOR map with
// small integer keys.

// encMode and decMode are immutable after construction and safe for
// concurrent use; they hold no state between calls.
var (
	encMode = mustEncMode()
	decMode = mustDecMode()
)

func mustEncMode() cbor.UserBufferEncMode {
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	em, err := opts.UserBufferEncMode()
	if err != nil {
		panic("proto: building CBOR encoder: " + err.Error()) // constant options: a programming error
	}
	return em
}

func mustDecMode() cbor.DecMode {
	dm, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		MaxNestedLevels:  4,
		MaxArrayElements: 16,
		MaxMapPairs:      16,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		UTF8:             cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic("proto: building CBOR decoder: " + err.Error()) // constant options: a programming error
	}
	return dm
}

// EncodeMsg returns the frame body of m (type byte, then CBOR), after
// checking m with Validate and its size against m.Type().MaxBodySize().
func EncodeMsg(m Msg) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte(byte(m.Type()))
	if err := encodeTo(&buf, m); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encodeTo appends the CBOR encoding of m to buf, checking m first and the
// resulting body size (including one type byte) after.
func encodeTo(buf *bytes.Buffer, m Msg) error {
	t := m.Type()
	if err := m.Validate(); err != nil {
		return fmt.Errorf("encoding %s: %w", t, err)
	}
	start := buf.Len()
	if err := encMode.MarshalToBuffer(m, buf); err != nil {
		return fmt.Errorf("encoding %s: %w", t, err)
	}
	if n := buf.Len() - start + 1; n > t.MaxBodySize() {
		return fmt.Errorf("encoding %s: body of %d bytes over %d: %w", t, n, t.MaxBodySize(), ErrFrameTooLarge)
	}
	return nil
}

// DecodeMsg decodes a frame body into a new message and validates it.
// Payload fields of the result alias body (no copy); other byte fields are
// copies. body must not be modified while the message is in use.
func DecodeMsg(body []byte) (Msg, error) {
	if len(body) == 0 {
		return nil, fmt.Errorf("decoding message: empty body: %w", ErrMalformed)
	}
	t := MsgType(body[0])
	m := newMsg(t)
	if m == nil {
		return nil, fmt.Errorf("decoding message: type %#x: %w", body[0], ErrUnknownType)
	}
	if len(body) > t.MaxBodySize() {
		return nil, fmt.Errorf("decoding %s: body of %d bytes over %d: %w", t, len(body), t.MaxBodySize(), ErrFrameTooLarge)
	}
	if err := decMode.Unmarshal(body[1:], m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w: %v", t, ErrMalformed, err) // %v: a CBOR io.EOF is not the stream's
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", t, err)
	}
	return m, nil
}

// Codec sends and receives messages over one stream (a libp2p stream or any
// io.ReadWriter). Sends are buffered until Flush, so a requester can queue
// many requests and flush once.
//
// One goroutine may call Send and Flush while another calls Recv; neither
// side is safe for several goroutines at once. A Codec has no notion of time:
// the caller MUST set deadlines on the underlying stream (docs/PROTOCOL.md
// "Streams"). After any error other than io.EOF from Recv the stream MUST be
// reset. A Send error wrapping ErrInvalid or ErrFrameTooLarge wrote nothing;
// after any other Send or Flush error the stream MUST be reset.
type Codec struct {
	fr  *FrameReader
	fw  *FrameWriter
	enc bytes.Buffer
}

// CodecOption configures a Codec.
type CodecOption func(*Codec)

// ReuseFrames makes Recv read every frame into one buffer owned by the
// Codec (as large as the largest frame received) instead of a fresh
// allocation. Payload fields of a received message then alias that buffer
// and are valid only until the next Recv: a receiver that verifies and stores each chunk before reading the next one saves an
// allocation of the chunk's size per message.
func ReuseFrames() CodecOption {
	return func(c *Codec) { c.fr.fresh = false }
}

// NewCodec returns a Codec on rw. It reads frames of at most
// MaxManifestFrameSize bytes, each also bounded by its type's MaxBodySize.
//
// The Codec keeps an encoding buffer as large as the largest chunk-carrying
// message it sent (up to MaxFrameSize), so that sending chunks does not
// allocate.
func NewCodec(rw io.ReadWriter, opts ...CodecOption) *Codec {
	fr := NewFrameReader(rw, MaxManifestFrameSize)
	fr.fresh = true // received Payloads alias their frame, so frames are not reused
	c := &Codec{fr: fr, fw: NewFrameWriter(rw, MaxManifestFrameSize)}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Send validates m, encodes it and queues it; it reaches the stream at the
// latest on Flush.
func (c *Codec) Send(m Msg) error {
	c.enc.Reset()
	if err := encodeTo(&c.enc, m); err != nil {
		return err
	}
	t := [1]byte{byte(m.Type())}
	if err := c.fw.writeFrame(t[:], c.enc.Bytes()); err != nil {
		return fmt.Errorf("sending %s: %w", m.Type(), err)
	}
	if c.enc.Cap() > MaxFrameSize {
		c.enc = bytes.Buffer{} // keep a chunk-sized buffer between sends, not a manifest-sized one
	}
	return nil
}

// Flush writes every queued message to the stream.
func (c *Codec) Flush() error {
	return c.fw.Flush()
}

// Recv reads, decodes and validates the next message. It returns io.EOF
// itself when the peer closed its side between messages. The message and
// its byte fields are the caller's to keep, except that with ReuseFrames
// its Payload fields are valid only until the next Recv.
func (c *Codec) Recv() (Msg, error) {
	body, err := c.fr.readFrame(bodyBound)
	if err != nil {
		return nil, err
	}
	return DecodeMsg(body)
}
