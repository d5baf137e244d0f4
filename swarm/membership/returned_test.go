package membership

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A member heard from again after it was not alive is recorded as back,
// with how long it was silent: first heard from (silent since the record
// began), after its connections closed (however short the silence), or
// after a silence longer than the quiet time (the time a member stays
// alive without answering). Pings answered on time, or late but within
// the quiet time, are not returns.
func TestLivenessRecordsReturns(t *testing.T) {
	const quiet = 2 * time.Second
	m := &Membership{live: newLiveness(quiet)}
	l := &m.live
	p := peer.ID("member")
	t0 := l.started

	first := t0.Add(time.Second)
	l.answered(p, first)
	if at, away := m.Returned(p); !at.Equal(first) || away != time.Second {
		t.Fatalf("first heard from 1 s after the start: returned %v after %v, want %v after 1s", at, away, first)
	}
	l.answered(p, t0.Add(2*time.Second))
	l.answered(p, t0.Add(3*time.Second))
	l.answered(p, t0.Add(4500*time.Millisecond)) // late, within quiet
	if at, _ := m.Returned(p); !at.Equal(first) {
		t.Fatalf("pings answered every second, then 1.5 s late: a return at %v", at)
	}
	back := t0.Add(48 * time.Second)
	l.answered(p, back)
	at, away := m.Returned(p)
	if !at.Equal(back) || away != 43500*time.Millisecond {
		t.Fatalf("heard from again after 43.5 s of silence: returned %v after %v, want %v after 43.5s", at, away, back)
	}
	l.answered(p, back.Add(-time.Second)) // an older report changes nothing
	if at2, _ := m.Returned(p); !at2.Equal(back) {
		t.Fatalf("an older answer moved the return to %v", at2)
	}

	// Disconnected: back at its next connection, however soon.
	l.disconnected(p)
	again := back.Add(500 * time.Millisecond)
	l.answered(p, again)
	if at, away := m.Returned(p); !at.Equal(again) || away != 500*time.Millisecond {
		t.Fatalf("reconnected 0.5 s after its connections closed: returned %v after %v, want %v after 0.5s", at, away, again)
	}
	l.answered(p, again.Add(time.Second))
	if at, _ := m.Returned(p); !at.Equal(again) {
		t.Fatalf("a ping on time after the reconnection: a return at %v", at)
	}

	q := peer.ID("late")
	l.answered(q, t0.Add(30*time.Second))
	if _, away := m.Returned(q); away != 30*time.Second {
		t.Fatalf("first heard from 30 s after the start: silent %v, want 30s", away)
	}
}
