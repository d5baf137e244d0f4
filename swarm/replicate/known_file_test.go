package replicate

import (
	"errors"
	"testing"
	"time"
)

// The repair state file round-trips, and a file damaged anywhere (a flipped
// byte, a short file, another file) is refused whole.
func TestRepairStateRoundTrip(t *testing.T) {
	p1, _ := testPeer(t)
	p2, _ := testPeer(t)
	first := time.Unix(1_800_000_000, 0)
	known := map[string]*knownState{
		testRoot(t, "a").KeyString(): {holders: holderSet{p1, p2}, first: first, level: atTarget, settled: true},
		testRoot(t, "b").KeyString(): {holders: holderSet{p2}, first: first.Add(time.Hour), level: belowMin},
		testRoot(t, "c").KeyString(): {holders: holderSet{}, first: first, level: belowTarget},
	}
	b := encodeKnown(42, known)
	ver, got, err := DecodeRepairState(b)
	if err != nil {
		t.Fatal(err)
	}
	if ver != 42 || len(got) != len(known) {
		t.Fatalf("version %d, %d contents; want 42 and %d", ver, len(got), len(known))
	}
	for k, want := range known {
		g := got[k]
		if g == nil || !g.same(want) || !g.first.Equal(want.first) {
			t.Fatalf("content %x: got %+v, want %+v", k, g, want)
		}
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x40
		if _, _, err := DecodeRepairState(bad); !errors.Is(err, ErrBadRepairState) {
			t.Fatalf("byte %d flipped: err %v, want ErrBadRepairState", i, err)
		}
	}
	for _, n := range []int{0, 10, len(b) / 2, len(b) - 1} {
		if _, _, err := DecodeRepairState(b[:n]); !errors.Is(err, ErrBadRepairState) {
			t.Fatalf("cut at %d: err %v, want ErrBadRepairState", n, err)
		}
	}
}

// FuzzDecodeRepairState: any bytes decode to an error or to states that
// encode and decode again to the same.
func FuzzDecodeRepairState(f *testing.F) {
	p1, _ := testPeer(f)
	f.Add(encodeKnown(3, map[string]*knownState{
		testRoot(f, "a").KeyString(): {holders: holderSet{p1}, first: time.Unix(1, 0), settled: true},
	}))
	f.Add(encodeKnown(0, nil))
	f.Add([]byte(repairStateMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		ver, known, err := DecodeRepairState(b)
		if err != nil {
			return
		}
		ver2, again, err := DecodeRepairState(encodeKnown(ver, known))
		if err != nil || ver2 != ver || len(again) != len(known) {
			t.Fatalf("re-encoded state does not decode the same: %v", err)
		}
		for k, st := range known {
			if a := again[k]; a == nil || !a.same(st) || !a.first.Equal(st.first) {
				t.Fatalf("content %x changed on re-encoding", k)
			}
		}
	})
}
