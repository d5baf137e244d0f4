package replicate

import (
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The repair round's decisions (docs/REPLICATION.md "Repair", "Trimming",
// "Leaving") as pure functions of what the round saw, the policy and the
// time: no network, no store, no locks. repair.go and drain.go gather the
// inputs and carry the decisions out.

// seen is what one repair round knows of one content.
type seen struct {
	// live are the storage members holding a verified full copy, this
	// member included when it is one.
	live []peer.ID
	// grace counts holders gone less than repair_after ago: they still count.
	grace int
	// unknown counts alive storage members whose answer is unknown (not
	// asked, or no answer in time): they may hold it.
	unknown int
	// pending counts placements of the content in flight from here.
	pending int
	// fetching says a fetch of the content runs here (a placement or a
	// resume): its copy is not to be trimmed.
	fetching bool
	// overSince is when the content was first seen over-replicated; zero
	// when it was not at the last round.
	overSince time.Time
	// stale says a placement of the content from here ended after the
	// survey began: the answers may predate the copy it made (or failed
	// to make), so nothing is placed or trimmed on them.
	stale bool
	// rejoining says a storage member lost (silent longer than
	// repair_after) was heard from again lately: the first of a partition
	// healing, maybe, whose other members, holding copies this member
	// counts as gone, are not reconnected yet. Nothing is placed then.
	rejoining bool
}

// level is how a content stands against the policy.
type level int

const (
	atTarget    level = iota // at least `copies`
	belowTarget              // at least `copies_min`, fewer than `copies`
	belowMin                 // fewer than `copies_min`
)

// verdict is what a member does about one content after a round.
type verdict struct {
	level level
	// place is how many new copies this member places (0: none).
	place int
	// trim says this member removes its own copy now.
	trim bool
	// overSince is the over-replication clock to keep (zero: cleared).
	overSince time.Time
}

// decide is the repair decision for root (docs/REPLICATION.md "Repair"):
// copies in grace count; below `copies` (counting placements in flight)
// the highest-ranked live holder places the difference, once every alive
// storage member answered (none is unknown) and no lost member came back
// lately (rejoining); above `copies`
// the lowest-ranked live storage holder removes its copy once the content
// has been over-replicated for max(repair_after, 3 rounds), unless a holder
// is in grace or unknown, a placement is in flight or a fetch runs here. every is the
// round interval.
func decide(pl policy, every time.Duration, root cid.Cid, s seen, now time.Time) verdict {
	count := len(s.live) + s.grace
	var v verdict
	switch {
	case count < pl.min:
		v.level = belowMin
	case count < pl.copies:
		v.level = belowTarget
	}
	if s.stale {
		return v
	}
	if count+s.pending < pl.copies {
		if s.unknown == 0 && !s.rejoining && actsFor(pl.self, root, s.live) {
			v.place = pl.copies - count - s.pending
		}
		return v
	}
	if !pl.storage || s.grace > 0 || s.unknown > 0 || s.pending > 0 || len(s.live)-1 < pl.copies || s.fetching {
		return v
	}
	if s.overSince.IsZero() {
		v.overSince = now
		return v
	}
	if now.Sub(s.overSince) < max(pl.grace, 3*every) {
		v.overSince = s.overSince
		return v
	}
	ranked := rank(root, append([]peer.ID(nil), s.live...))
	if ranked[len(ranked)-1] != pl.self {
		v.overSince = s.overSince
		return v
	}
	v.trim = true
	return v
}

// actsFor reports whether self is the member to place copies of root: the
// highest-ranked live storage holder, or, when no storage member holds it,
// any member holding it (a client that put it).
func actsFor(self peer.ID, root cid.Cid, live []peer.ID) bool {
	if len(live) == 0 {
		return true
	}
	return rank(root, append([]peer.ID(nil), live...))[0] == self
}

// drainNeed is how many copies a member that leaves places of a content
// that `others` (storage members other than itself) hold in full: enough
// for `copies` without its own.
func drainNeed(pl policy, others []peer.ID) int {
	return max(pl.copies-len(others), 0)
}
