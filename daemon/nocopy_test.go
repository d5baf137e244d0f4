package daemon

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// A reference record round-trips what recordNocopy writes and anything
// else is refused without panicking.
func FuzzParseNocopyRef(f *testing.F) {
	ref := nocopyRef{Root: "bafireid7nsfxg5e44mnh4flft2z4zqcqcxf2buhqeaiw65yew35bv3jpdy", Path: "/home/u/annex/.git/annex/objects/x",
		Size: 1 << 30, MTime: time.Date(2026, 11, 30, 23, 0, 0, 5, time.UTC), Added: true}
	good, err := json.Marshal(ref)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"root":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","path":"/x","size":1,"mtime":"2026-11-30T23:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"root":"x","extra":1}`))
	f.Add([]byte(strings.Repeat("[", 10000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseNocopyRef(b)
		if err != nil {
			return
		}
		if len(b) > maxNocopyRef {
			t.Fatalf("%d bytes taken", len(b))
		}
		enc, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseNocopyRef(enc)
		if err != nil || again.Root != got.Root || again.Path != got.Path || again.Size != got.Size ||
			!again.MTime.Equal(got.MTime) || again.Added != got.Added {
			t.Fatalf("%q: %+v does not round-trip: %+v, %v", b, got, again, err)
		}
	})
}

// TestParseNocopyRefRefuses: a record naming a chunk, not a manifest, is refused.
func TestParseNocopyRefRefuses(t *testing.T) {
	for _, b := range []string{
		`{"root":"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku","path":"/x","size":1,"mtime":"2026-11-30T23:00:00Z"}`,
		`{"root":"","path":"/x"}`,
		`{"root":"bafireid7nsfxg5e44mnh4flft2z4zqcqcxf2buhqeaiw65yew35bv3jpdy","unknown":true}`,
	} {
		if _, err := parseNocopyRef([]byte(b)); err == nil {
			t.Errorf("%s taken", b)
		}
	}
	if _, err := parseNocopyRef([]byte(`{"root":"bafireid7nsfxg5e44mnh4flft2z4zqcqcxf2buhqeaiw65yew35bv3jpdy","path":"/x","size":1,"mtime":"2026-11-30T23:00:00Z","added":true}`)); err != nil {
		t.Errorf("a good record refused: %v", err)
	}
}
