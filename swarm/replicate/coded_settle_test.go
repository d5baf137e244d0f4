package replicate

import (
	"testing"
	"time"
)

// A rebuild of two lost sets seen from a member that does not do it: the
// check between the first and the second set placed (5 of 6 sets, above
// the threshold of 5) does not settle the content, so the next rounds
// still survey it and see the sixth set; with every set back it settles.
// A rebuild that stops after one set settles once nothing grew for
// repair_after. A content that lost one set and was never short settles
// at once (nothing is rebuilt above the threshold).
func TestCodedSettleWaitsForARebuildElsewhere(t *testing.T) {
	const grace = 10 * time.Second
	const need, n = 5, 6
	t0 := time.Now()
	check := func(st *codedKnown, at time.Duration, a, h int) bool {
		now := t0.Add(at)
		if h > st.h {
			st.grew = now
		}
		st.h = h
		return st.settle(now, grace, a, h, need, n, true)
	}

	st := &codedKnown{first: t0}
	if !check(st, 0, 6, 6) {
		t.Fatal("six sets of six, every holder answering: not settled")
	}
	if check(st, 20*time.Second, 4, 4) {
		t.Fatal("two sets lost: settled")
	}
	if check(st, 21*time.Second, 5, 5) {
		t.Fatal("the first rebuilt set placed, the second under way: settled at 5 of 6")
	}
	if check(st, 25*time.Second, 5, 5) {
		t.Fatal("4 s after the first rebuilt set: settled at 5 of 6")
	}
	if !check(st, 26*time.Second, 6, 6) {
		t.Fatal("every set back: not settled")
	}
	if !st.short.IsZero() {
		t.Fatal("every set back: the rebuild is still remembered")
	}

	// A rebuild that placed one set and no more.
	st = &codedKnown{first: t0}
	check(st, 0, 6, 6)
	check(st, 20*time.Second, 4, 4)
	check(st, 21*time.Second, 5, 5)
	if check(st, 30*time.Second, 5, 5) {
		t.Fatal("9 s after the last set placed (repair_after 10 s): settled")
	}
	if !check(st, 32*time.Second, 5, 5) {
		t.Fatal("nothing grew for repair_after: not settled")
	}

	// One set lost, never below the threshold: settled at once.
	st = &codedKnown{first: t0}
	check(st, 0, 6, 6)
	if !check(st, 20*time.Second, 5, 5) {
		t.Fatal("one set lost, above the threshold: not settled")
	}
	// Never settled while a holder is unanswered or a placement runs.
	if st.settle(t0.Add(40*time.Second), grace, 6, 6, need, n, false) {
		t.Fatal("settled with a holder unanswered")
	}
}
