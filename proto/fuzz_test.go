package proto

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// knownErr reports whether err is one of the errors a reader or decoder is
// documented to return for bad input.
func knownErr(err error) bool {
	for _, e := range []error{io.EOF, ErrFrameTooLarge, ErrTruncated, ErrMalformed, ErrUnknownType, ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzReadFrame reads frames from arbitrary bytes and writes back those it
// accepted: since lengths are minimal varints, the rewrite must reproduce
// the consumed input exactly.
func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add([]byte{0x03, 'a', 'b', 'c', 0x01, 'd'})
	f.Add([]byte{0x80, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 1 << 12
		fr := NewFrameReader(bytes.NewReader(data), max)
		var out bytes.Buffer
		fw := NewFrameWriter(&out, max)
		for range len(data) + 1 { // every frame consumes at least one byte
			body, err := fr.ReadFrame()
			if err != nil {
				if !knownErr(err) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(body) > max {
				t.Fatalf("accepted a %d-byte frame over bound %d", len(body), max)
			}
			if err := fw.WriteFrame(body); err != nil {
				t.Fatalf("rewriting an accepted frame: %v", err)
			}
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatalf("rewritten frames %x are not a prefix of the input %x", out.Bytes(), data)
		}
	})
}

// FuzzDecodeMessage decodes arbitrary frame bodies; every accepted message
// must encode, and decoding that encoding must give the same encoding again.
func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMsgs(f) {
		body, err := EncodeMsg(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m := decodeStable(t, body)
		if m != nil && m.Type() != MsgType(body[0]) {
			t.Fatalf("body of type %#x decoded as %s", body[0], m.Type())
		}
	})
}

// decodeStable decodes a fuzzed body; for an accepted message it checks that
// its encoding decodes again to the same encoding, and returns it (nil for a
// refused body, which must be refused with one of the package's errors).
func decodeStable(t *testing.T, body []byte) Msg {
	t.Helper()
	m, err := DecodeMsg(body)
	if err != nil {
		if !knownErr(err) || errors.Is(err, io.EOF) {
			t.Fatalf("unexpected error %v", err)
		}
		return nil
	}
	enc1, err := EncodeMsg(m)
	if err != nil {
		t.Fatalf("re-encoding an accepted %s: %v", m.Type(), err)
	}
	m2, err := DecodeMsg(bytes.Clone(enc1))
	if err != nil {
		t.Fatalf("decoding our own encoding %x: %v", enc1, err)
	}
	enc2, err := EncodeMsg(m2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc1, enc2) {
		t.Fatalf("encoding not stable:\n%x\n%x", enc1, enc2)
	}
	return m
}
