package membership

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// A member heard from again after a silence of more than the quiet time
// (the time a member stays alive without answering) is recorded as back, with how long it was silent;
// pings answered on time are not returns, and a member first heard from
// was silent since the record began.
func TestLivenessRecordsReturns(t *testing.T) {
	const quiet = 2 * time.Second
	m := &Membership{live: newLiveness(quiet)}
	l := &m.live
	p := peer.ID("member")
	t0 := l.started

	l.answered(p, t0.Add(time.Second))
	if at, _ := m.Returned(p); !at.IsZero() {
		t.Fatalf("first heard from 1 s after the start (quiet %v): a return at %v", quiet, at)
	}
	l.answered(p, t0.Add(2*time.Second))
	l.answered(p, t0.Add(3*time.Second))
	if at, _ := m.Returned(p); !at.IsZero() {
		t.Fatalf("pings answered every second: a return at %v", at)
	}
	back := t0.Add(48 * time.Second)
	l.answered(p, back)
	at, away := m.Returned(p)
	if !at.Equal(back) || away != 45*time.Second {
		t.Fatalf("heard from again after 45 s of silence: returned %v after %v, want %v after 45s", at, away, back)
	}
	l.answered(p, back.Add(-time.Second)) // an older report changes nothing
	if at2, _ := m.Returned(p); !at2.Equal(back) {
		t.Fatalf("an older answer moved the return to %v", at2)
	}

	q := peer.ID("late")
	l.answered(q, t0.Add(30*time.Second))
	if _, away := m.Returned(q); away != 30*time.Second {
		t.Fatalf("first heard from 30 s after the start: silent %v, want 30s", away)
	}
}
