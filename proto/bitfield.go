package proto

import (
	"fmt"
	"math/bits"
)

// Bitfield is the have-set of a HaveResponse: bit i says whether chunk i of
// the manifest is present. Bits are LSB-first within each byte (chunk i is bit
// i%8 of byte i/8), the length is ceil(n/8) bytes for n chunks and the padding
// bits of the last byte are zero. See docs/PROTOCOL.md "Bitfield".
type Bitfield []byte

// NewBitfield returns an all-clear bitfield for n chunks.
func NewBitfield(n int) Bitfield {
	return make(Bitfield, (n+7)/8)
}

// Set marks chunk i as present. It panics if i is outside the bitfield, like
// a slice index.
func (b Bitfield) Set(i int) {
	b[i>>3] |= 1 << (i & 7)
}

// Has reports whether chunk i is present. It panics if i is outside the
// bitfield, like a slice index.
func (b Bitfield) Has(i int) bool {
	return b[i>>3]&(1<<(i&7)) != 0
}

// Count returns the number of chunks marked present.
func (b Bitfield) Count() int {
	c := 0
	for _, x := range b {
		c += bits.OnesCount8(x)
	}
	return c
}

// Validate checks that b is a well-formed bitfield for n chunks: exactly
// ceil(n/8) bytes long with the padding bits zero. Errors wrap ErrInvalid.
func (b Bitfield) Validate(n int) error {
	if n < 0 {
		return fmt.Errorf("bitfield for %d chunks: %w", n, ErrInvalid)
	}
	if want := (n + 7) / 8; len(b) != want {
		return fmt.Errorf("bitfield of %d bytes for %d chunks, want %d bytes: %w", len(b), n, want, ErrInvalid)
	}
	if r := n % 8; r != 0 && b[len(b)-1]>>r != 0 {
		return fmt.Errorf("bitfield for %d chunks has padding bits set: %w", n, ErrInvalid)
	}
	return nil
}
