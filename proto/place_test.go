package proto

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

func placeRoot(t testing.TB) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte("place"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(0x51, h)
}

func placeMsgs(t testing.TB) []Msg {
	root := placeRoot(t)
	return []Msg{
		&PlaceRequest{ID: 1, Root: root},
		&PlaceRequest{ID: 2, Root: root, Manifest: []byte{0xa1, 0x01, 0x02}, Wait: true},
		&PlaceRequest{ID: 3, Root: root, Manifest: []byte{0xa1, 0x01, 0x02}, Data: []byte("small content")},
		&PlaceRequest{ID: 4, Root: root, Manifest: []byte{0xa1, 0x01, 0x02}, Shards: 1 << 31},
		&PlaceStart{ID: 2},
		&PlaceStatus{ID: 2, State: PlaceFilling, Bytes: 10, Total: 20},
		&PlaceStatus{ID: 3, State: PlaceDone, Bytes: 20, Total: 20},
		&Removal{Root: root, Issuer: []byte("peer"), Time: 1700000000000000000, Sig: []byte{1, 2, 3}},
		&Removal{Root: root, Issuer: []byte("peer"), Time: 1, Restore: true, Sig: []byte{4}},
	}
}

func TestPlaceMessagesRoundTrip(t *testing.T) {
	for _, m := range placeMsgs(t) {
		body, err := EncodeMsg(m)
		if err != nil {
			t.Fatalf("encoding %s: %v", m.Type(), err)
		}
		got, err := DecodeMsg(body)
		if err != nil {
			t.Fatalf("decoding %s: %v", m.Type(), err)
		}
		if got.Type() != m.Type() || got.Type().String() != m.Type().String() {
			t.Fatalf("%s decoded as %s", m.Type(), got.Type())
		}
		a, _ := EncodeMsg(got)
		if !bytes.Equal(a, body) {
			t.Fatalf("%s: re-encoding differs", m.Type())
		}
		if pr, ok := m.(*PlaceRequest); ok && len(pr.Manifest) == 0 {
			continue // nil and empty payloads compare differently
		}
		if !reflect.DeepEqual(normalize(got), normalize(m)) {
			t.Fatalf("%s: got %+v, want %+v", m.Type(), got, m)
		}
	}
}

func normalize(m Msg) Msg {
	if r, ok := m.(*PlaceRequest); ok {
		c := *r
		c.Manifest = append([]byte{}, r.Manifest...)
		c.Data = append([]byte{}, r.Data...)
		return &c
	}
	return m
}

func TestPlaceMessagesInvalid(t *testing.T) {
	root := placeRoot(t)
	for _, m := range []Msg{
		&PlaceRequest{ID: 1},
		&PlaceRequest{ID: 1, Root: root, Data: []byte("no manifest")},
		&PlaceRequest{ID: 1, Root: root, Manifest: []byte{1}, Data: []byte("x"), Wait: true},
		&PlaceRequest{ID: 1, Root: root, Manifest: []byte{1}, Data: make([]byte, MaxInlineSize+1)},
		&PlaceRequest{ID: 1, Root: root, Manifest: []byte{1}, Shards: 3},
		&PlaceRequest{ID: 1, Root: root, Shards: 1},
		&PlaceRequest{ID: 1, Root: root, Manifest: []byte{1}, Shards: 1, Wait: true},
		&PlaceStatus{ID: 1, State: 0},
		&PlaceStatus{ID: 1, State: PlaceDone + 1},
		&PlaceStatus{ID: 1, State: PlaceFilling, Bytes: 2, Total: 1},
		&Removal{Root: root, Issuer: nil, Time: 1, Sig: []byte{1}},
		&Removal{Root: root, Issuer: []byte("p"), Time: 0, Sig: []byte{1}},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: make([]byte, MaxSignatureSize+1)},
	} {
		if _, err := EncodeMsg(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %+v: got %v, want ErrInvalid", m.Type(), m, err)
		}
	}
}

func TestRemovalSigningBytesCoverEveryField(t *testing.T) {
	base := Removal{Root: placeRoot(t), Issuer: []byte("peer"), Time: 5, Sig: []byte{1}}
	ref := base.SigningBytes()
	variants := []Removal{base, base, base, base}
	variants[0].Issuer = []byte("peeR")
	variants[1].Time = 6
	variants[2].Restore = true
	variants[3].Sig = []byte{2} // the signature itself is not signed
	for i, v := range variants[:3] {
		if bytes.Equal(v.SigningBytes(), ref) {
			t.Errorf("variant %d signs the same bytes", i)
		}
	}
	if !bytes.Equal(variants[3].SigningBytes(), ref) {
		t.Error("the signature changed the signed bytes")
	}
}

// FuzzPlaceMessage decodes arbitrary replication message bodies; an
// accepted one must re-encode to a stable encoding.
func FuzzPlaceMessage(f *testing.F) {
	for _, m := range placeMsgs(f) {
		body, err := EncodeMsg(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if r, ok := decodeStable(t, body).(*Removal); ok {
			_ = r.SigningBytes()
		}
	})
}
