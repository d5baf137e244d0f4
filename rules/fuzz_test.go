package rules

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The fuzz seeds under testdata/fuzz are made by
//
//	go test ./rules -run TestWriteFuzzSeeds -write-fuzz-seeds
//
// which also writes testdata/genesis.asc, the current definition FuzzVerify
// checks successors against.
var writeSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite the fuzz seed corpora under testdata/fuzz")

// FuzzParse checks that Parse never panics, and that whatever it accepts
// encodes canonically: Encode(Parse(b)) parses to the same encoding.
func FuzzParse(f *testing.F) {
	f.Add([]byte("format = 1\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := Parse(body)
		if err != nil {
			return
		}
		enc := d.Encode()
		d2, err := Parse(enc)
		if err != nil {
			t.Fatalf("Parse(Encode(d)): %v\n%s", err, enc)
		}
		if enc2 := d2.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable:\n%s\n---\n%s", enc, enc2)
		}
	})
}

// FuzzVerify checks that the verifier entry points never panic, and that a
// document they accept is a valid successor whose body round-trips.
func FuzzVerify(f *testing.F) {
	gen, err := os.ReadFile(filepath.Join("testdata", "genesis.asc"))
	if err != nil {
		f.Fatal(err)
	}
	cur, err := Verify(gen)
	if err != nil {
		f.Fatalf("testdata/genesis.asc: %v", err)
	}
	f.Add(gen)
	f.Fuzz(func(t *testing.T, doc []byte) {
		if d, err := Verify(doc); err == nil {
			if _, err := Parse(d.Encode()); err != nil {
				t.Fatalf("a verified document does not round-trip: %v", err)
			}
		}
		next, err := cur.VerifyNext(doc)
		if err != nil {
			return
		}
		if next.ID != cur.ID || next.Version <= cur.Version {
			t.Fatalf("accepted version %d of %s after version %d of %s", next.Version, next.ID, cur.Version, cur.ID)
		}
		if _, ok := cur.Admin(next.SignerFingerprint()); !ok {
			t.Fatalf("accepted a document signed by %s, not an admin", next.SignerFingerprint())
		}
	})
}

// TestWriteFuzzSeeds rewrites the seed corpora when -write-fuzz-seeds is given.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("run with -write-fuzz-seeds to rewrite testdata/fuzz")
	}
	alice, _ := newSigner(t, "alice")
	v1, s1 := genesis(t, alice, "seed")
	if err := os.WriteFile(filepath.Join("testdata", "genesis.asc"), s1, 0o644); err != nil {
		t.Fatal(err)
	}
	n := v1.Next()
	m := newMember(t, "nas", 4101)
	m.Groups = []string{"home"}
	m.Limits = Limits{Storage: 50 << 30, Upload: 16 << 20, Download: 64 << 20}
	if err := n.AddMember(m); err != nil {
		t.Fatal(err)
	}
	c := newMember(t, "laptop", 4102)
	c.Role = RoleClient
	if err := n.AddMember(c); err != nil {
		t.Fatal(err)
	}
	s2, err := alice.Sign(n, v1)
	if err != nil {
		t.Fatal(err)
	}
	coded := n.Next()
	if err := coded.Set("erasure=4+2"); err != nil {
		t.Fatal(err)
	}
	s3, err := alice.Sign(coded, v1)
	if err != nil {
		t.Fatal(err)
	}
	mallory, _ := newSigner(t, "mallory")
	seeds := map[string][]byte{
		"genesis":   s1,
		"v2":        s2,
		"erasure":   s3,
		"truncated": s2[:len(s2)/2],
		"nonadmin":  signRaw(t, mallory, string(n.Encode())),
		"tampered":  bytes.Replace(s2, []byte("50GiB"), []byte("60GiB"), 1),
	}
	write(t, "FuzzVerify", seeds)
	write(t, "FuzzParse", map[string][]byte{
		"genesis": v1.Encode(),
		"v2":      n.Encode(),
		"erasure": coded.Encode(),
		"dup":     append(n.Encode(), "\n[[member]]\nname = \"nas\"\n"...),
		"syntax":  []byte("format = = 1\n"),
	})
}

func write(t *testing.T, fuzzer string, seeds map[string][]byte) {
	dir := filepath.Join("testdata", "fuzz", fuzzer)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seeds {
		text := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
