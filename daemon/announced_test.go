package daemon

import (
	"strings"
	"testing"
	"time"
)

// The announced file round-trips what SetAnnounced writes and refuses
// anything else without panicking.
func FuzzParseAnnounced(f *testing.F) {
	at := time.Date(2026, 11, 30, 21, 0, 0, 0, time.UTC)
	f.Add([]byte(at.Format(time.RFC3339) + "\n"))
	f.Add([]byte(""))
	f.Add([]byte("yesterday"))
	f.Add([]byte(strings.Repeat("9", 100)))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := parseAnnounced(b)
		if err != nil {
			return
		}
		if len(b) > maxAnnounced {
			t.Fatalf("%d bytes taken", len(b))
		}
		again, err := parseAnnounced([]byte(got.Format(time.RFC3339)))
		if err != nil || !again.Equal(got.Truncate(time.Second)) {
			t.Fatalf("%q: %v does not round-trip: %v, %v", b, got, again, err)
		}
	})
}
