package replicate

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The hook of storage audits (swarm/audit, docs/RELIABILITY.md "Audits"):
// a holder that failed an audit no longer counts, and the content is
// placed anew at once instead of at the next round.

// AuditFailed records that member p failed an audit of root (it answered
// that a chunk is missing, or answered a wrong proof): p no longer counts
// as a holder of root, and when root is then below `copies` and this
// member is the one to act (the highest-ranked holder left), it places the
// missing copies on other members, p excluded, in the background. It
// reports how many copies it started to place. The next repair round
// surveys p again: an honest holder that lost a chunk reports the content
// incomplete from then on (its store dropped the chunk) and fetches it
// back itself.
func (r *Replicator) AuditFailed(ctx context.Context, root cid.Cid, p peer.ID) int {
	pl, ok := r.currentPolicy()
	if ok && r.codedRoot(ctx, root) {
		r.codedAuditFailed(root, p) // rebuilt by the coded check (coded_repair.go)
		return 0
	}
	if !ok || !pl.storage || !r.complete(ctx, root) || r.tombs.removed(root) {
		return 0
	}
	k := root.KeyString()
	r.mu.Lock()
	live := []peer.ID{pl.self}
	skip := map[peer.ID]bool{pl.self: true, p: true}
	if known := r.known[k]; known != nil {
		known.holders = known.holders.without(p)
		known.settled = false // surveyed again at the next round
		for _, q := range known.holders {
			if q != pl.self {
				live = append(live, q)
			}
			skip[q] = true
		}
	}
	for q := range r.pending[k] {
		skip[q] = true
	}
	need := pl.copies - len(live) - len(r.pending[k])
	r.mu.Unlock()
	if need <= 0 || !actsFor(pl.self, root, live) {
		return 0
	}
	r.log.Info("holder failed an audit; placing anew", "cid", root, "peer", p, "copies", len(live), "target", pl.copies, "placing", need)
	if !r.background(ctx, func(ctx context.Context) {
		r.place(ctx, pl, root, need, skip, live, false, newPlacement())
	}) {
		return 0
	}
	return need
}

// Recheck makes root due at the next repair round although its last check
// found it settled: this member found a chunk of it lost or corrupt (an
// audit it answered, docs/RELIABILITY.md "Audits"), so the round sees the
// copy incomplete and resumes it.
func (r *Replicator) Recheck(root cid.Cid) {
	r.mu.Lock()
	if st := r.known[root.KeyString()]; st != nil {
		st.settled = false
	}
	r.mu.Unlock()
}
