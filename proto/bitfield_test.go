package proto

import (
	"errors"
	"testing"
)

// TestBitfieldAgainstModel compares Bitfield with a []bool for every size up
// to 40 and a spread of bit patterns.
func TestBitfieldAgainstModel(t *testing.T) {
	for n := 0; n <= 40; n++ {
		b := NewBitfield(n)
		if len(b) != (n+7)/8 {
			t.Fatalf("NewBitfield(%d) has %d bytes", n, len(b))
		}
		model := make([]bool, n)
		for i := 0; i < n; i += 1 + i%3 {
			b.Set(i)
			model[i] = true
		}
		count := 0
		for i := range n {
			if b.Has(i) != model[i] {
				t.Fatalf("n=%d: Has(%d)=%t, want %t", n, i, b.Has(i), model[i])
			}
			if model[i] {
				count++
			}
		}
		if b.Count() != count {
			t.Fatalf("n=%d: Count()=%d, want %d", n, b.Count(), count)
		}
		if err := b.Validate(n); err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
	}
}

// TestBitfieldLayout pins LSB-first order: chunk 0 is bit 0 of byte 0,
// chunk 9 is bit 1 of byte 1.
func TestBitfieldLayout(t *testing.T) {
	b := NewBitfield(10)
	b.Set(0)
	b.Set(9)
	if b[0] != 0x01 || b[1] != 0x02 {
		t.Fatalf("got %08b %08b", b[0], b[1])
	}
}

func TestBitfieldValidate(t *testing.T) {
	cases := []struct {
		b  Bitfield
		n  int
		ok bool
	}{
		{Bitfield{}, 0, true},
		{nil, 0, true},
		{Bitfield{0x00}, 0, false},
		{Bitfield{0xff}, 8, true},
		{Bitfield{0x7f}, 7, true},
		{Bitfield{0xff}, 7, false},
		{Bitfield{0x01, 0x00}, 8, false},
		{Bitfield{0xff, 0x01}, 9, true},
		{Bitfield{0xff, 0x02}, 9, false},
		{Bitfield{0xff}, 9, false},
		{Bitfield{}, -1, false},
	}
	for _, tc := range cases {
		err := tc.b.Validate(tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("Validate(%x, %d) = %v, want ok=%t", []byte(tc.b), tc.n, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%x, %d) = %v, not ErrInvalid", []byte(tc.b), tc.n, err)
		}
	}
}
