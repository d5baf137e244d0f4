package proto

import (
	"encoding/binary"
	"fmt"
)

// Payload is a large byte-string field (a chunk, a manifest). Decoding does
// not copy it: after DecodeMsg or Codec.Recv it aliases the frame body, which
// Codec allocates afresh for every frame, so the message owns it. It is a
// plain []byte otherwise: a []byte can be assigned to it and it can be
// passed where a []byte is expected.
type Payload []byte

// UnmarshalCBOR implements cbor.Unmarshaler: data is one well-formed CBOR
// item (checked by the decoder), which must be a definite-length byte string
// or null. The result aliases data.
func (p *Payload) UnmarshalCBOR(data []byte) error {
	if len(data) == 1 && data[0] == 0xf6 { // null
		*p = nil
		return nil
	}
	if len(data) == 0 || data[0]>>5 != 2 {
		return fmt.Errorf("payload: not a byte string: %w", ErrMalformed)
	}
	var n uint64
	hdr := 1
	switch ai := data[0] & 0x1f; {
	case ai < 24:
		n = uint64(ai)
	case ai == 24 && len(data) >= 2:
		n, hdr = uint64(data[1]), 2
	case ai == 25 && len(data) >= 3:
		n, hdr = uint64(binary.BigEndian.Uint16(data[1:])), 3
	case ai == 26 && len(data) >= 5:
		n, hdr = uint64(binary.BigEndian.Uint32(data[1:])), 5
	case ai == 27 && len(data) >= 9:
		n, hdr = binary.BigEndian.Uint64(data[1:]), 9
	default:
		return fmt.Errorf("payload: bad byte string header %#x: %w", data[0], ErrMalformed)
	}
	if n != uint64(len(data)-hdr) {
		return fmt.Errorf("payload: byte string of %d bytes in an item of %d: %w", n, len(data)-hdr, ErrMalformed)
	}
	*p = data[hdr:len(data):len(data)]
	return nil
}
