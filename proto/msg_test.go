package proto

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// sampleMsgs returns one filled-in message of every type.
func sampleMsgs(tb testing.TB) []Msg {
	tb.Helper()
	block := testData(1000, 7)
	root := testCID(tb, []byte("manifest"))
	have := NewBitfield(11)
	have.Set(0)
	have.Set(3)
	have.Set(10)
	return []Msg{
		&HaveRequest{ID: 1, Root: root},
		&HaveResponse{ID: 1, Root: root, NumChunks: 11, Have: have},
		&HaveResponse{ID: 2, Root: root, Complete: true, NumChunks: 3, Have: Bitfield{0x07}},
		&HaveResponse{ID: 3, Root: root, Complete: true, NumChunks: 0, Have: Bitfield{}},
		&HaveResponse{ID: 4, Root: root, NumChunks: 3, Have: Bitfield{0x00}, Shards: 1<<5 | 1},
		&ManifestRequest{ID: 2, Root: root},
		&ManifestResponse{ID: 2, Root: root, Data: []byte("manifest")},
		&BlockRequest{ID: 1 << 40, CID: testCID(tb, block)},
		&BlockRequest{ID: 7, CID: testCID(tb, block), Verify: true},
		&BlockResponse{ID: 1 << 40, CID: testCID(tb, block), Data: block},
		&BlockResponse{ID: 5, CID: testCID(tb, nil), Data: Payload{}},
		&ErrorResponse{ID: 3, Code: CodeNotFound, Message: "no such chunk"},
		&ErrorResponse{ID: 4, Code: 999},
		&Bye{},
		&Hello{SwarmID: "swarm-7f3a", Version: 12},
		&GetRules{},
		&Rules{Signed: []byte("-----BEGIN PGP SIGNED MESSAGE-----\n...")},
	}
}

func TestMsgRoundTrip(t *testing.T) {
	for _, m := range sampleMsgs(t) {
		body, err := EncodeMsg(m)
		if err != nil {
			t.Fatalf("encoding %#v: %v", m, err)
		}
		if MsgType(body[0]) != m.Type() {
			t.Fatalf("%s: body starts with %#x", m.Type(), body[0])
		}
		got, err := DecodeMsg(body)
		if err != nil {
			t.Fatalf("decoding %s %x: %v", m.Type(), body, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: round trip gave %#v, want %#v", m.Type(), got, m)
		}
	}
}

// TestEncodingByHand builds bodies from the spec's rules (type byte, CBOR map
// with integer keys in ascending order, shortest heads) and compares.
func TestEncodingByHand(t *testing.T) {
	c := testCID(t, []byte("x"))
	cb := c.Bytes() // 36 bytes: CIDv1, raw, sha2-256
	if len(cb) != 36 {
		t.Fatalf("test CID is %d bytes", len(cb))
	}
	cidItem := append([]byte{0x58, 36}, cb...) // byte string, 1-byte length
	cases := []struct {
		m    Msg
		want []byte
	}{
		{&BlockRequest{ID: 1, CID: c}, cat([]byte{0x05, 0xa2, 0x01, 0x01, 0x02}, cidItem)},
		{&BlockRequest{ID: 1, CID: c, Verify: true}, cat([]byte{0x05, 0xa3, 0x01, 0x01, 0x02}, cidItem, []byte{0x03, 0xf5})},
		{&BlockResponse{ID: 500, CID: c, Data: []byte("hi")},
			cat([]byte{0x06, 0xa3, 0x01, 0x19, 0x01, 0xf4, 0x02}, cidItem, []byte{0x03, 0x42, 'h', 'i'})},
		{&ErrorResponse{ID: 0, Code: CodeBusy, Message: "x"}, []byte{0x09, 0xa3, 0x01, 0x00, 0x02, 0x03, 0x03, 0x61, 'x'}},
		{&Bye{}, []byte{0x0a, 0xa0}},
		{&Hello{SwarmID: "s", Version: 2}, []byte{0x20, 0xa2, 0x01, 0x61, 's', 0x02, 0x02}},
		{&GetRules{}, []byte{0x21, 0xa0}},
		{&HaveResponse{ID: 1, Root: c, NumChunks: 9, Have: Bitfield{0x01, 0x01}},
			cat([]byte{0x02, 0xa5, 0x01, 0x01, 0x02}, cidItem, []byte{0x03, 0xf4, 0x04, 0x09, 0x05, 0x42, 0x01, 0x01})},
	}
	for _, tc := range cases {
		got, err := EncodeMsg(tc.m)
		if err != nil {
			t.Fatalf("%s: %v", tc.m.Type(), err)
		}
		if !bytes.Equal(got, tc.want) {
			t.Errorf("%s:\n got %x\nwant %x", tc.m.Type(), got, tc.want)
		}
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func TestDecodeRejects(t *testing.T) {
	c := testCID(t, []byte("x"))
	cidItem := append([]byte{0x58, 36}, c.Bytes()...)
	blockReq := cat([]byte{0x05, 0xa2, 0x01, 0x01, 0x02}, cidItem)
	bigData := make([]byte, MaxChunkSize+1)
	overChunk := cat([]byte{0x06, 0xa3, 0x01, 0x01, 0x02}, cidItem, []byte{0x03, 0x5a, 0x00, 0x40, 0x00, 0x01}, bigData)
	cases := []struct {
		name string
		body []byte
		want error
	}{
		{"empty body", nil, ErrMalformed},
		{"unknown type", []byte{0xff, 0xa0}, ErrUnknownType},
		{"type zero", []byte{0x00, 0xa0}, ErrUnknownType},
		{"no CBOR", []byte{0x0a}, ErrMalformed},
		{"trailing garbage", append(append([]byte{}, blockReq...), 0x00), ErrMalformed},
		{"array not map", []byte{0x0a, 0x80}, ErrMalformed},
		{"truncated CBOR", blockReq[:len(blockReq)-1], ErrMalformed},
		{"duplicate key", []byte{0x09, 0xa2, 0x01, 0x01, 0x01, 0x02}, ErrMalformed},
		{"indefinite map", []byte{0x09, 0xbf, 0x01, 0x01, 0xff}, ErrMalformed},
		{"tag", []byte{0x09, 0xa1, 0x01, 0xc1, 0x01}, ErrMalformed},
		{"wrong field type", []byte{0x09, 0xa1, 0x01, 0x61, 'x'}, ErrMalformed},
		{"negative id", []byte{0x09, 0xa1, 0x01, 0x20}, ErrMalformed},
		{"num chunks over uint32", cat([]byte{0x02, 0xa2, 0x02}, cidItem, []byte{0x04, 0x1b, 1, 0, 0, 0, 0, 0, 0, 0}), ErrMalformed},
		{"invalid utf-8", []byte{0x09, 0xa2, 0x02, 0x01, 0x03, 0x61, 0xff}, ErrMalformed},
		{"bad CID bytes", []byte{0x05, 0xa1, 0x02, 0x43, 0x01, 0x02, 0x03}, ErrMalformed},
		{"payload not bytes", cat([]byte{0x06, 0xa2, 0x02}, cidItem, []byte{0x03, 0x61, 'x'}), ErrMalformed},
		{"deep nesting", []byte{0x09, 0xa1, 0x09, 0x81, 0x81, 0x81, 0x81, 0x00}, ErrMalformed},
		{"long array", cat([]byte{0x09, 0xa1, 0x09, 0x91}, make([]byte, 17)), ErrMalformed},
		{"many map pairs", manyPairs(17), ErrMalformed},
		{"missing CID", []byte{0x05, 0xa1, 0x01, 0x01}, ErrInvalid},
		{"chunk over bound", overChunk, ErrInvalid},
		{"bitfield too short", cat([]byte{0x02, 0xa3, 0x02}, cidItem, []byte{0x04, 0x09, 0x05, 0x41, 0x00}), ErrInvalid},
		{"bitfield padding set", cat([]byte{0x02, 0xa3, 0x02}, cidItem, []byte{0x04, 0x03, 0x05, 0x41, 0x08}), ErrInvalid},
		{"complete but missing", cat([]byte{0x02, 0xa4, 0x02}, cidItem, []byte{0x03, 0xf5, 0x04, 0x03, 0x05, 0x41, 0x03}), ErrInvalid},
		{"full but not complete", cat([]byte{0x02, 0xa3, 0x02}, cidItem, []byte{0x04, 0x03, 0x05, 0x41, 0x07}), ErrInvalid},
		{"error code zero", []byte{0x09, 0xa1, 0x01, 0x01}, ErrInvalid},
		{"error message too long", cat([]byte{0x09, 0xa2, 0x02, 0x01, 0x03, 0x79, 0x01, 0x01}, bytes.Repeat([]byte{'a'}, 257)), ErrInvalid},
		{"empty manifest", cat([]byte{0x04, 0xa1, 0x02}, cidItem), ErrInvalid},
		{"hello without swarm", []byte{0x20, 0xa1, 0x02, 0x01}, ErrInvalid},
		{"hello swarm with slash", []byte{0x20, 0xa1, 0x01, 0x63, 'a', '/', 'b'}, ErrInvalid},
		{"empty rules", []byte{0x22, 0xa0}, ErrInvalid},
		{"request over its type bound", cat([]byte{0x05, 0xa3, 0x01, 0x01, 0x02}, cidItem, []byte{0x09, 0x5a, 0, 1, 0, 0}, make([]byte, 1<<16)), ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMsg(tc.body)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %#v, %v; want %v", m, err, tc.want)
			}
			if errors.Is(err, io.EOF) {
				t.Fatalf("%v wraps io.EOF, which callers take for a clean end of stream", err)
			}
		})
	}
}

// manyPairs returns a Bye body whose map has n pairs (unknown keys).
func manyPairs(n int) []byte {
	b := []byte{0x0a, 0xa0 | byte(n)}
	if n >= 24 {
		b = []byte{0x0a, 0xb8, byte(n)}
	}
	for i := range n {
		b = append(b, 0x18, byte(100+i), 0x00)
	}
	return b
}

// TestDecodeIgnoresUnknownKeys pins the extension rule: a receiver ignores
// map keys it does not know.
func TestDecodeIgnoresUnknownKeys(t *testing.T) {
	body := []byte{0x09, 0xa3, 0x01, 0x07, 0x02, 0x05, 0x18, 40, 0x63, 'n', 'e', 'w'}
	m, err := DecodeMsg(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := (&ErrorResponse{ID: 7, Code: CodeBadRequest}); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %#v, want %#v", m, want)
	}
	if _, err := DecodeMsg(manyPairs(16)); err != nil {
		t.Fatalf("16 unknown pairs: %v", err)
	}
}

func TestEncodeRejectsInvalid(t *testing.T) {
	c := testCID(t, []byte("x"))
	cases := []Msg{
		&BlockRequest{ID: 1},
		&BlockResponse{ID: 1, CID: c, Data: make([]byte, MaxChunkSize+1)},
		&ManifestResponse{ID: 1, Root: c},
		&HaveResponse{Root: c, NumChunks: 9, Have: NewBitfield(8)},
		&HaveResponse{Root: c, NumChunks: MaxNumChunks + 1, Have: NewBitfield(MaxNumChunks + 1)},
		&ErrorResponse{Code: CodeInternal, Message: strings.Repeat("x", MaxErrorMessage+1)},
		&Hello{SwarmID: strings.Repeat("s", MaxSwarmIDSize+1)},
		&Hello{SwarmID: "has space"},
		&Rules{Signed: make([]byte, MaxRulesSize+1)},
	}
	for _, m := range cases {
		if _, err := EncodeMsg(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: got %v, want ErrInvalid", m.Type(), err)
		}
	}
}

// TestPayloadAliasesBody pins the documented zero-copy decoding of Payload
// fields, and that other byte fields are copies.
func TestPayloadAliasesBody(t *testing.T) {
	data := testData(100, 3)
	body, err := EncodeMsg(&BlockResponse{ID: 1, CID: testCID(t, data), Data: data})
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeMsg(body)
	if err != nil {
		t.Fatal(err)
	}
	got := m.(*BlockResponse).Data
	body[len(body)-1] ^= 0xff
	if got[len(got)-1] != body[len(body)-1] {
		t.Fatal("Payload does not alias the body")
	}

	rbody, err := EncodeMsg(&Rules{Signed: []byte("signed")})
	if err != nil {
		t.Fatal(err)
	}
	rm, err := DecodeMsg(rbody)
	if err != nil {
		t.Fatal(err)
	}
	rbody[len(rbody)-1] = 'X'
	if string(rm.(*Rules).Signed) != "signed" {
		t.Fatal("Rules.Signed aliases the body")
	}
}

func TestMaxBodySizeCoversEveryType(t *testing.T) {
	for i := range 256 {
		typ := MsgType(i)
		m := newMsg(typ)
		if (m == nil) != (typ.MaxBodySize() == 0) {
			t.Errorf("type %#x: defined=%t but bound %d", i, m != nil, typ.MaxBodySize())
		}
		if m != nil && m.Type() != typ {
			t.Errorf("type %#x builds a %s", i, m.Type())
		}
		if m != nil && strings.HasPrefix(typ.String(), "MsgType(") {
			t.Errorf("type %#x has no name", i)
		}
	}
}
