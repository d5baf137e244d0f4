package proto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Framing, as specified in docs/PROTOCOL.md section "Framing": a frame is an
// unsigned LEB128 varint (minimal form) giving the body length, then the body.

// Sizes that bound what is read off the wire. See docs/PROTOCOL.md "Bounds".
const (
	// MaxChunkSize is the largest chunk payload a BlockResponse
	// may carry.
	MaxChunkSize = 4 << 20
	// MaxManifestSize is the largest encoded manifest a ManifestResponse may carry.
	MaxManifestSize = 8 << 20
	// MaxRulesSize is the largest signed swarm definition a Rules message may carry.
	MaxRulesSize = 1 << 20
	// FrameOverhead is the room left in a frame for the message type, the CBOR
	// map and the fields other than the one large payload.
	FrameOverhead = 64 << 10
	// MaxFrameSize bounds the body of every frame except a ManifestResponse:
	// one chunk plus overhead.
	MaxFrameSize = MaxChunkSize + FrameOverhead
	// MaxManifestFrameSize bounds the body of a ManifestResponse frame, the
	// largest frame of the protocol.
	MaxManifestFrameSize = MaxManifestSize + FrameOverhead
)

// maxVarintLen is the longest unsigned varint accepted (enough for 63 bits,
// as in multiformats unsigned-varint).
const maxVarintLen = 9

// Sentinel errors. Any of them (other than a clean io.EOF) means the stream
// is no longer in a known state and MUST be reset (docs/PROTOCOL.md "Errors").
var (
	// ErrFrameTooLarge is returned when a frame's declared length exceeds the
	// bound for the reader or for the message type; nothing is allocated for it.
	ErrFrameTooLarge = errors.New("proto: frame too large")
	// ErrTruncated is returned when the stream ends inside a frame.
	ErrTruncated = errors.New("proto: truncated frame")
	// ErrMalformed is returned when a frame cannot be decoded: a non-minimal or
	// overlong length varint, an empty body, invalid CBOR, or trailing bytes
	// after the CBOR item.
	ErrMalformed = errors.New("proto: malformed frame")
	// ErrUnknownType is returned when a frame carries a message type this
	// version of the protocol does not define.
	ErrUnknownType = errors.New("proto: unknown message type")
	// ErrInvalid is returned when a decoded message (or one about to be sent)
	// breaks a rule of its type: a bound, a missing CID, an inconsistent bitfield.
	ErrInvalid = errors.New("proto: invalid message")
)

// FrameReader reads length-prefixed frames from a stream, refusing any frame
// longer than its bound before allocating memory for it.
//
// The slice returned by ReadFrame is reused by the next call.
type FrameReader struct {
	br    *bufio.Reader
	max   int
	buf   []byte
	fresh bool // allocate every body afresh instead of reusing buf
}

// NewFrameReader returns a FrameReader on r that refuses frames whose body is
// longer than max bytes.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	return &FrameReader{br: bufio.NewReaderSize(r, frameBuffer), max: max}
}

// ReadFrame reads the next frame and returns its body, valid until the next
// call. At a clean end of stream (no byte of a new frame read) it returns
// io.EOF itself; an end of stream inside a frame is ErrTruncated.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	return fr.readFrame(nil)
}

// readFrame reads one frame. When bound is not nil and the body is not empty,
// it is called with the body's first byte (the message type) and the length
// is checked against the bound it returns, still before allocating.
func (fr *FrameReader) readFrame(bound func(first byte) (int, error)) ([]byte, error) {
	n, err := fr.readLength()
	if err != nil {
		return nil, err
	}
	if n > uint64(fr.max) {
		return nil, fmt.Errorf("reading frame: length %d over bound %d: %w", n, fr.max, ErrFrameTooLarge)
	}
	if n > 0 && bound != nil {
		first, err := fr.br.Peek(1)
		if err != nil {
			return nil, truncated("reading frame type", err)
		}
		limit, err := bound(first[0])
		if err != nil {
			return nil, err
		}
		if n > uint64(limit) {
			return nil, fmt.Errorf("reading frame of type %#x: length %d over bound %d: %w", first[0], n, limit, ErrFrameTooLarge)
		}
	}
	var body []byte
	switch {
	case fr.fresh:
		body = make([]byte, n)
	case uint64(cap(fr.buf)) < n:
		fr.buf = make([]byte, n)
		body = fr.buf
	default:
		body = fr.buf[:n]
	}
	if _, err := io.ReadFull(fr.br, body); err != nil {
		return nil, truncated("reading frame body", err)
	}
	return body, nil
}

// readLength reads the minimal unsigned varint that starts a frame.
func (fr *FrameReader) readLength() (uint64, error) {
	var x uint64
	for i := 0; i < maxVarintLen; i++ {
		b, err := fr.br.ReadByte()
		if err != nil {
			if i == 0 && err == io.EOF {
				return 0, io.EOF
			}
			return 0, truncated("reading frame length", err)
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, fmt.Errorf("reading frame length: non-minimal varint: %w", ErrMalformed)
			}
			return x, nil
		}
	}
	return 0, fmt.Errorf("reading frame length: varint longer than %d bytes: %w", maxVarintLen, ErrMalformed)
}

// truncated maps an end of stream inside a frame to ErrTruncated and wraps
// any other read error with what was being done.
func truncated(doing string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: %w", doing, ErrTruncated)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// FrameWriter writes length-prefixed frames through a buffer. Nothing is
// guaranteed to reach the underlying writer until Flush, so a client can
// queue several requests and send them in one go.
type FrameWriter struct {
	bw  *bufio.Writer
	max int
	hdr [maxVarintLen + 1]byte
}

// NewFrameWriter returns a FrameWriter on w that refuses to write frames
// whose body is longer than max bytes.
func NewFrameWriter(w io.Writer, max int) *FrameWriter {
	return &FrameWriter{bw: bufio.NewWriterSize(w, frameBuffer), max: max}
}

// WriteFrame queues one frame with the given body.
func (fw *FrameWriter) WriteFrame(body []byte) error {
	if len(body) > fw.max {
		return fmt.Errorf("writing frame: length %d over bound %d: %w", len(body), fw.max, ErrFrameTooLarge)
	}
	return fw.writeFrame(nil, body)
}

// writeFrame queues a frame whose body is prefix followed by rest, without
// joining them first. The caller has checked the bound.
func (fw *FrameWriter) writeFrame(prefix, rest []byte) error {
	hdr := binary.AppendUvarint(fw.hdr[:0], uint64(len(prefix)+len(rest)))
	if _, err := fw.bw.Write(hdr); err != nil {
		return fmt.Errorf("writing frame header: %w", err)
	}
	if _, err := fw.bw.Write(prefix); err != nil {
		return fmt.Errorf("writing frame body: %w", err)
	}
	if _, err := fw.bw.Write(rest); err != nil {
		return fmt.Errorf("writing frame body: %w", err)
	}
	return nil
}

// Flush writes every queued frame to the underlying writer.
func (fw *FrameWriter) Flush() error {
	if err := fw.bw.Flush(); err != nil {
		return fmt.Errorf("flushing frames: %w", err)
	}
	return nil
}

// frameBuffer is the buffer size of a FrameReader and a FrameWriter: small,
// since most streams carry a few short messages and chunk bodies larger
// than it bypass it.
const frameBuffer = 8 << 10
