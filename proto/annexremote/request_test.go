package annexremote

import (
	"errors"
	"testing"
)

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		line string
		want Request
	}{
		{"PREPARE", Request{Name: "PREPARE"}},
		{"TRANSFER STORE K a  b c", Request{Name: "TRANSFER", Args: "STORE K a  b c"}},
		{"J 12 TRANSFER RETRIEVE K f", Request{Job: 12, Name: "TRANSFER", Args: "RETRIEVE K f"}},
		{"J 1 VALUE ", Request{Job: 1, Name: "VALUE"}},
		{"VALUE", Request{Name: "VALUE"}},
		{"J", Request{Name: "J"}}, // not a prefix: an (unknown) command
		{"CHECKPRESENT-UNKNOWN K why", Request{Name: "CHECKPRESENT-UNKNOWN", Args: "K why"}},
	} {
		got, err := ParseRequest(tc.line)
		if err != nil || got != tc.want {
			t.Errorf("ParseRequest(%q) = %+v, %v; want %+v", tc.line, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", " PREPARE", "prepare", "J 1", "J 1 ", "J 0 PREPARE", "J 01 PREPARE",
		"J -1 PREPARE", "J x PREPARE", "J 2147483648 PREPARE", "J  1 PREPARE", "1ABC"} {
		if r, err := ParseRequest(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseRequest(%q) = %+v, %v; want ErrMalformed", bad, r, err)
		}
	}
}

func TestRequestString(t *testing.T) {
	for _, line := range []string{"PREPARE", "J 3 TRANSFER STORE K a b", "J 2147483647 GETCOST", "VALUE  two spaces "} {
		r, err := ParseRequest(line)
		if err != nil {
			t.Fatal(err)
		}
		if r.String() != line {
			t.Errorf("%q round-trips as %q", line, r.String())
		}
	}
}

func TestSplitArgs(t *testing.T) {
	if f, ok := splitArgs("STORE K my file.txt", 3); !ok || f[2] != "my file.txt" {
		t.Errorf("got %q %v", f, ok)
	}
	if f, ok := splitArgs("STORE K ", 3); !ok || f[2] != "" {
		t.Errorf("empty last field: got %q %v", f, ok)
	}
	for _, bad := range []string{"STORE K", "STORE  f", " K f", ""} {
		if f, ok := splitArgs(bad, 3); ok {
			t.Errorf("splitArgs(%q) = %q, want refused", bad, f)
		}
	}
}
