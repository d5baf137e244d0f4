package proto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

func auditMsgs(tb testing.TB) []Msg {
	root, ch := testCID(tb, []byte("root")), testCID(tb, []byte("chunk"))
	nonce := testData(AuditNonceSize, 7)
	return []Msg{
		&AuditRequest{ID: 1, Root: root, Chunk: ch, Nonce: nonce},
		&AuditResponse{ID: 1, State: AuditHeld, Proof: AuditProof(nonce, []byte("data"))},
		&AuditResponse{ID: 2, State: AuditMissing},
	}
}

func TestAuditMessagesRoundTrip(t *testing.T) {
	for _, m := range auditMsgs(t) {
		body, err := EncodeMsg(m)
		if err != nil {
			t.Fatalf("encoding %s: %v", m.Type(), err)
		}
		if len(body) > m.Type().MaxBodySize() {
			t.Fatalf("%s: %d bytes over its bound %d", m.Type(), len(body), m.Type().MaxBodySize())
		}
		got, err := DecodeMsg(body)
		if err != nil {
			t.Fatalf("decoding %s: %v", m.Type(), err)
		}
		if got.Type().String() != auditTypeName(m.Type()) {
			t.Fatalf("%s decoded as %s", m.Type(), got.Type())
		}
		if r, ok := got.(*AuditResponse); ok && r.State == AuditMissing {
			r.Proof = nil // nil and empty payloads compare differently
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%s: got %+v, want %+v", m.Type(), got, m)
		}
	}
}

func TestAuditMessagesInvalid(t *testing.T) {
	root := testCID(t, []byte("root"))
	nonce := testData(AuditNonceSize, 1)
	for _, m := range []Msg{
		&AuditRequest{ID: 1, Chunk: root, Nonce: nonce},
		&AuditRequest{ID: 1, Root: root, Nonce: nonce},
		&AuditRequest{ID: 1, Root: root, Chunk: root, Nonce: nonce[:31]},
		&AuditRequest{ID: 1, Root: root, Chunk: root, Nonce: append(nonce, 0)},
		&AuditResponse{ID: 1, State: 0},
		&AuditResponse{ID: 1, State: AuditMissing + 1},
		&AuditResponse{ID: 1, State: AuditHeld, Proof: []byte{1}},
		&AuditResponse{ID: 1, State: AuditMissing, Proof: make([]byte, AuditProofSize)},
	} {
		if _, err := EncodeMsg(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %+v: got %v, want ErrInvalid", m.Type(), m, err)
		}
	}
}

// The proof depends on the nonce and on every byte of the data.
func TestAuditProofBindsNonceAndData(t *testing.T) {
	data := testData(100, 3)
	n1, n2 := testData(AuditNonceSize, 1), testData(AuditNonceSize, 2)
	ref := AuditProof(n1, data)
	if bytes.Equal(ref, AuditProof(n2, data)) {
		t.Fatal("proof does not depend on the nonce")
	}
	flipped := append([]byte(nil), data...)
	flipped[99] ^= 1
	if bytes.Equal(ref, AuditProof(n1, flipped)) {
		t.Fatal("proof does not depend on the data")
	}
	if len(ref) != AuditProofSize {
		t.Fatalf("proof of %d bytes", len(ref))
	}
}

// FuzzAuditMessages decodes arbitrary audit frame bodies: every accepted
// message is valid and re-encodes stably.
func FuzzAuditMessages(f *testing.F) {
	for _, m := range auditMsgs(f) {
		body, err := EncodeMsg(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) == 0 || auditTypeName(MsgType(body[0])) == "" {
			return
		}
		m := decodeStable(t, body)
		if m == nil {
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted an invalid %s: %v", m.Type(), err)
		}
	})
}
