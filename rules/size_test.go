package rules

import (
	"errors"
	"math"
	"testing"
)

func TestParseSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
	}{
		{"0", 0},
		{"1024", 1024},
		{"7B", 7},
		{"50GiB", 50 << 30},
		{"50 gib", 50 << 30},
		{"1.5GB", 1500000000},
		{"1.5KiB", 1536},
		{"0.1kB", 100},
		{"16MiB", 16 << 20},
		{"2TB", 2e12},
		{"7EiB", 7 << 60},
		{"1.0000000001KiB", 1024},
		{"  3 MB ", 3e6},
	}
	for _, c := range good {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []string{"", "GiB", "-1", "1.", ".5", "1..2", "1.2.3", "5 parsecs", "8EiB", "99999999999999999999", "1e3", "1,5GB", "0x10", "1 G", "16MiB/s"}
	for _, in := range bad {
		if got, err := ParseSize(in); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSize(%q) = %d, %v; want ErrSize", in, got, err)
		}
	}
}

func TestParseRate(t *testing.T) {
	if got, err := ParseRate("16MiB/s"); err != nil || got != 16<<20 {
		t.Errorf("ParseRate(16MiB/s) = %d, %v", got, err)
	}
	if got, err := ParseRate("1.5MB/s"); err != nil || got != 1500000 {
		t.Errorf("ParseRate(1.5MB/s) = %d, %v", got, err)
	}
	for _, in := range []string{"16MiB", "/s", "fast/s", "16MiB/h"} {
		if got, err := ParseRate(in); !errors.Is(err, ErrSize) {
			t.Errorf("ParseRate(%q) = %d, %v; want ErrSize", in, got, err)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0B", 7: "7B", 1024: "1KiB", 2000: "2kB", 50 << 30: "50GiB",
		1500000000: "1500MB", 1536: "1536B", 3 << 60: "3EiB"} {
		if got := FormatSize(n); got != want {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := FormatRate(16 << 20); got != "16MiB/s" {
		t.Errorf("FormatRate = %q", got)
	}
}

// FuzzParseSize checks that ParseSize never panics and that every size
// survives FormatSize and ParseSize.
func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"50GiB", "1.5GB", "16MiB/s", "0", "7EiB", "-1", "1.", "3 kb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseSize(s)
		if err != nil {
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d < 0", s, n)
		}
		back, err := ParseSize(FormatSize(n))
		if err != nil || back != n {
			t.Fatalf("ParseSize(FormatSize(%d)) = %d, %v", n, back, err)
		}
		if r, err := ParseRate(FormatRate(n)); err != nil || r != n {
			t.Fatalf("ParseRate(FormatRate(%d)) = %d, %v", n, r, err)
		}
	})
}

func TestParseSizeMax(t *testing.T) {
	if got, err := ParseSize("9223372036854775807"); err != nil || got != math.MaxInt64 {
		t.Errorf("max int64: %d, %v", got, err)
	}
	if _, err := ParseSize("9223372036854775808"); !errors.Is(err, ErrSize) {
		t.Errorf("max int64 + 1: %v, want ErrSize", err)
	}
}
