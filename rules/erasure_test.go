package rules

import (
	"errors"
	"strings"
	"testing"
)

// TestErasureSet covers `rules set erasure=...` and erasure_min_size, the
// signed round trip of a coded policy and the return to format 1.
func TestErasureSet(t *testing.T) {
	alice, _ := newSigner(t, "alice")
	v1, _ := genesis(t, alice, "coded")
	plain := string(v1.Encode())
	n := v1.Next()
	for _, a := range []string{"erasure=4+2", "erasure_min_size=256KiB", "erasure=6+3"} {
		if err := n.Set(a); err != nil {
			t.Fatalf("Set(%q): %v", a, err)
		}
	}
	want := Erasure{Data: 6, Parity: 3, MinSize: 256 << 10}
	if n.Replication.Erasure != want {
		t.Fatalf("erasure = %+v, want %+v", n.Replication.Erasure, want)
	}
	body := string(n.Encode())
	for _, line := range []string{"format = 2\n", "[replication.erasure]\ndata = 6\nparity = 3\nmin_size = \"256KiB\"\n"} {
		if !strings.Contains(body, line) {
			t.Errorf("encoding lacks %q:\n%s", line, body)
		}
	}
	s2, err := alice.Sign(n, v1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := v1.VerifyNext(s2)
	if err != nil {
		t.Fatal(err)
	}
	if v2.Replication.Erasure != want {
		t.Fatalf("verified erasure = %+v, want %+v", v2.Replication.Erasure, want)
	}
	if !strings.Contains(v2.Summary(), "erasure=6+3 erasure_min_size=256KiB") {
		t.Errorf("summary: %s", v2.Summary())
	}

	n3 := v2.Next()
	if err := n3.Set("erasure=none"); err != nil {
		t.Fatal(err)
	}
	if n3.Replication.Erasure.Enabled() {
		t.Fatalf("erasure=none left %+v", n3.Replication.Erasure)
	}
	// Without a scheme the replication part is exactly what format 1 wrote.
	if b := string(n3.Encode()); !strings.Contains(b, "format = 1\n") || !strings.Contains(b, "[replication.erasure] # reserved\ndata = 0\nparity = 0\n\n") {
		t.Fatalf("erasure=none does not go back to format 1:\n%s", b)
	}
	if !strings.Contains(plain, "[replication.erasure] # reserved\ndata = 0\nparity = 0\n\n") {
		t.Fatalf("a plain genesis changed its encoding:\n%s", plain)
	}
	if _, err := alice.Sign(n3, v2); err != nil {
		t.Fatal(err)
	}
}

// TestErasureSetRejects checks every refused assignment gives a one-line
// ErrInvalid that names the key.
func TestErasureSetRejects(t *testing.T) {
	alice, _ := newSigner(t, "alice")
	v1, _ := genesis(t, alice, "coded")
	for _, a := range []string{
		"erasure=4", "erasure=4+", "erasure=+2", "erasure=a+b", "erasure=0+2", "erasure=4+0",
		"erasure=-1+2", "erasure=30+3", "erasure=32+32", "erasure=4+2+1", "erasure=",
		"erasure_min_size=1MiB", // no scheme yet
	} {
		n := v1.Next()
		err := n.Set(a)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%q) = %v, want ErrInvalid", a, err)
			continue
		}
		if strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), "erasure") {
			t.Errorf("Set(%q): error %q is not one line naming the key", a, err)
		}
		if n.Replication.Erasure.Enabled() {
			t.Errorf("Set(%q) changed the policy to %+v", a, n.Replication.Erasure)
		}
	}
	n := v1.Next()
	if err := n.Set("erasure=4+2"); err != nil {
		t.Fatal(err)
	}
	if err := n.Set("erasure_min_size=12 parsecs"); !errors.Is(err, ErrInvalid) {
		t.Errorf("erasure_min_size=12 parsecs: %v", err)
	}
	for _, a := range []string{"erasure=1+1", "erasure=31+1", "erasure=1+31", "erasure=16+16", "erasure_min_size=0"} {
		if err := n.Set(a); err != nil {
			t.Errorf("Set(%q): %v", a, err)
		}
	}
}

// TestErasureParseRejects checks the written forms Parse refuses: a scheme
// in format 1 (what older daemons would be asked to read) and bad values in
// format 2.
func TestErasureParseRejects(t *testing.T) {
	alice, _ := newSigner(t, "alice")
	v1, _ := genesis(t, alice, "coded")
	n := v1.Next()
	if err := n.Set("erasure=4+2"); err != nil {
		t.Fatal(err)
	}
	coded := string(n.Encode())
	plain := string(v1.Encode())
	reserved := "[replication.erasure] # reserved\ndata = 0\nparity = 0\n"
	cases := map[string]struct {
		body string
		want error
	}{
		"scheme in format 1":        {strings.Replace(coded, "format = 2", "format = 1", 1), ErrInvalid},
		"min_size in format 1":      {strings.Replace(plain, "parity = 0\n", "parity = 0\nmin_size = \"1MiB\"\n", 1), ErrInvalid},
		"format 2 without a scheme": {strings.Replace(plain, "format = 1", "format = 2", 1), ErrInvalid},
		"format 3":                  {strings.Replace(coded, "format = 2", "format = 3", 1), ErrInvalid},
		"zero parity":               {strings.Replace(coded, "parity = 2", "parity = 0", 1), ErrInvalid},
		"zero data":                 {strings.Replace(coded, "data = 4", "data = 0", 1), ErrInvalid},
		"too many shards":           {strings.Replace(coded, "data = 4", "data = 31", 1), ErrInvalid},
		"huge data":                 {strings.Replace(coded, "data = 4", "data = 9223372036854775807", 1), ErrInvalid},
		"negative parity":           {strings.Replace(coded, "parity = 2", "parity = -2", 1), ErrInvalid},
		"bad min_size":              {strings.Replace(coded, `min_size = "1MiB"`, `min_size = "-1MiB"`, 1), ErrInvalid},
		"min_size as number":        {strings.Replace(coded, `min_size = "1MiB"`, `min_size = 1048576`, 1), ErrSyntax},
		"unknown erasure key":       {strings.Replace(coded, "parity = 2\n", "parity = 2\nsuccess = 5\n", 1), ErrUnknownField},
		"no erasure table":          {strings.Replace(plain, reserved, "", 1), nil},
	}
	for name, c := range cases {
		_, err := Parse([]byte(c.body))
		if c.want == nil {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: Parse = %v, want one line wrapping %v", name, err, c.want)
		}
	}
	// The absent min_size reads as the default.
	d, err := Parse([]byte(strings.Replace(coded, "min_size = \"1MiB\"\n", "", 1)))
	if err != nil || d.Replication.Erasure.MinSize != DefaultErasureMinSize {
		t.Fatalf("absent min_size: %v, %+v", err, d)
	}
}

// TestThresholds checks the thresholds of docs/ERASURE.md#thresholds and
// which contents are coded.
func TestThresholds(t *testing.T) {
	for _, c := range []struct {
		copiesMin, k, m int
		want            Thresholds
	}{
		{1, 4, 2, Thresholds{Needed: 4, Success: 5, Repair: 5, Target: 6}},
		{2, 4, 2, Thresholds{Needed: 4, Success: 5, Repair: 5, Target: 6}},
		{3, 4, 2, Thresholds{Needed: 4, Success: 6, Repair: 6, Target: 6}},
		{9, 4, 2, Thresholds{Needed: 4, Success: 6, Repair: 6, Target: 6}},
		{1, 1, 1, Thresholds{Needed: 1, Success: 2, Repair: 2, Target: 2}},
		{4, 10, 6, Thresholds{Needed: 10, Success: 13, Repair: 13, Target: 16}},
	} {
		r := Replication{Copies: 9, CopiesMin: c.copiesMin, Erasure: Erasure{Data: c.k, Parity: c.m, MinSize: 100}}
		if got := r.Thresholds(); got != c.want {
			t.Errorf("copies_min=%d %d+%d: %+v, want %+v", c.copiesMin, c.k, c.m, got, c.want)
		}
		if r.Coded(99) || !r.Coded(100) {
			t.Errorf("Coded around min_size 100: %v %v", r.Coded(99), r.Coded(100))
		}
	}
	if (Replication{Copies: 2, CopiesMin: 1}).Coded(1 << 40) {
		t.Error("a policy without erasure codes contents")
	}
}
