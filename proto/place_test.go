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
		&PlaceRequest{ID: 5, Root: root, Manifest: []byte{0xa1, 0x01, 0x02}, Data: []byte("again"),
			Restore: &Removal{Root: root, Issuer: []byte("peer"), Time: 3, Restore: true, Sig: []byte{6}}},
		&PlaceStart{ID: 2},
		&PlaceStatus{ID: 2, State: PlaceFilling, Bytes: 10, Total: 20},
		&PlaceStatus{ID: 3, State: PlaceDone, Bytes: 20, Total: 20},
		&Removal{Root: root, Issuer: []byte("peer"), Time: 1700000000000000000, Sig: []byte{1, 2, 3}},
		&Removal{Root: root, Issuer: []byte("peer"), Time: 1, Restore: true, Sig: []byte{4}},
		&Removal{Root: root, Issuer: []byte("peer"), Time: 2, Sig: []byte{5}, Successor: placeRoot2(t)},
	}
}

// placeRoot2 is another manifest CID than placeRoot.
func placeRoot2(t testing.TB) cid.Cid {
	t.Helper()
	h, err := multihash.Sum([]byte("moved"), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(0x51, h)
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
		&PlaceRequest{ID: 1, Root: root, Restore: &Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: []byte{1}}},
		&PlaceRequest{ID: 1, Root: root, Restore: &Removal{Root: placeRoot2(t), Issuer: []byte("p"), Time: 1, Restore: true, Sig: []byte{1}}},
		&PlaceRequest{ID: 1, Root: root, Restore: &Removal{Root: root, Issuer: []byte("p"), Time: 0, Restore: true, Sig: []byte{1}}},
		&PlaceStatus{ID: 1, State: 0},
		&PlaceStatus{ID: 1, State: PlaceDone + 1},
		&PlaceStatus{ID: 1, State: PlaceFilling, Bytes: 2, Total: 1},
		&Removal{Root: root, Issuer: nil, Time: 1, Sig: []byte{1}},
		&Removal{Root: root, Issuer: []byte("p"), Time: 0, Sig: []byte{1}},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: make([]byte, MaxSignatureSize+1)},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: []byte{1}, Successor: root},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: []byte{1}, Restore: true, Successor: placeRoot2(t)},
		&Removal{Root: root, Issuer: []byte("p"), Time: 1, Sig: []byte{1}, Successor: longCID(t)},
	} {
		if _, err := EncodeMsg(m); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s %+v: got %v, want ErrInvalid", m.Type(), m, err)
		}
	}
}

func TestRemovalSigningBytesCoverEveryField(t *testing.T) {
	base := Removal{Root: placeRoot(t), Issuer: []byte("peer"), Time: 5, Sig: []byte{1}}
	ref := base.SigningBytes()
	variants := []Removal{base, base, base, base, base, base}
	variants[0].Issuer = []byte("peeR")
	variants[1].Time = 6
	variants[2].Restore = true
	variants[3].Successor = placeRoot2(t)
	variants[4].Root = placeRoot2(t)
	variants[5].Sig = []byte{2} // the signature itself is not signed
	signed := map[string]int{string(ref): -1}
	for i, v := range variants[:5] {
		if j, ok := signed[string(v.SigningBytes())]; ok {
			t.Errorf("variant %d signs the same bytes as %d", i, j)
		}
		signed[string(v.SigningBytes())] = i
	}
	if !bytes.Equal(variants[5].SigningBytes(), ref) {
		t.Error("the signature changed the signed bytes")
	}
	// Two successors differ too.
	other := variants[3]
	other.Successor = placeRoot(t)
	if bytes.Equal(other.SigningBytes(), variants[3].SigningBytes()) {
		t.Error("two successors sign the same bytes")
	}
}

// TestRemovalWithoutSuccessorSignsAsBefore pins the signed bytes of a
// record without a successor to the form before the field existed, so
// that records signed by older daemons still verify.
func TestRemovalWithoutSuccessorSignsAsBefore(t *testing.T) {
	r := Removal{Root: placeRoot(t), Issuer: []byte("peer"), Time: 5, Restore: true, Sig: []byte{1}}
	root := r.Root.Bytes()
	want := []byte(removalDomain)
	want = append(want, 0, byte(len(root)))
	want = append(want, root...)
	want = append(want, 0, 4, 'p', 'e', 'e', 'r', 0, 0, 0, 0, 0, 0, 0, 5, 1)
	if got := r.SigningBytes(); !bytes.Equal(got, want) {
		t.Fatalf("signing bytes\n%x\nwant\n%x", got, want)
	}
}

// TestRemovalWithoutSuccessorDecodes: a record encoded without key 6 (as
// older daemons send it) decodes with no successor.
func TestRemovalWithoutSuccessorDecodes(t *testing.T) {
	body, err := EncodeMsg(&Removal{Root: placeRoot(t), Issuer: []byte("peer"), Time: 5, Sig: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
	if body[1] != 0xa5 { // a map of the five keys 1-5
		t.Fatalf("a record without a successor does not encode a map of 5 keys: %x", body)
	}
	m, err := DecodeMsg(body)
	if err != nil {
		t.Fatal(err)
	}
	if r := m.(*Removal); r.Successor.Defined() {
		t.Fatalf("decoded successor %s from a record without one", r.Successor)
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

// longCID is a CID longer than MaxCIDSize.
func longCID(t testing.TB) cid.Cid {
	t.Helper()
	h, err := multihash.Sum(make([]byte, MaxCIDSize+1), multihash.IDENTITY, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(0x51, h)
}
