package replicate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Resolution of re-coded roots (docs/ERASURE.md "Re-coding"): a content
// re-coded under new rules gets a new root, and a removal record of the
// old root names it as its successor. Everything that takes a root from
// outside (get, where, rm: the roots git-annex and users keep) follows
// those records first.

// MaxSuccessorSteps bounds the successor records Resolve follows.
const MaxSuccessorSteps = 8

// ErrBadSuccessor is returned when a successor record names a content
// that provably holds other bytes than the root it replaces.
var ErrBadSuccessor = errors.New("swarm: successor record names other bytes")

// manifestAsk bounds asking the members for a successor's manifest.
const manifestAsk = 10 * time.Second

// chain returns root followed by its successors, as the successor records
// held here name them: at most MaxSuccessorSteps after root, and never a
// root twice (a cycle ends the chain before it repeats).
func (r *Replicator) chain(root cid.Cid) []cid.Cid {
	out := []cid.Cid{root}
	seen := map[string]bool{root.KeyString(): true}
	for range MaxSuccessorSteps {
		next, ok := r.tombs.successor(out[len(out)-1])
		if !ok || seen[next.KeyString()] {
			break
		}
		seen[next.KeyString()] = true
		out = append(out, next)
	}
	return out
}

// Resolve returns the root under which the bytes of root live now: root
// itself, or the last successor its successor records lead to (at most
// MaxSuccessorSteps; a cycle stops before it repeats). It asks no one.
func (r *Replicator) Resolve(root cid.Cid) cid.Cid {
	c := r.chain(root)
	return c[len(c)-1]
}

// CheckSuccessor checks that next, the manifest of a successor of old,
// holds old's bytes. prev is old's manifest when it is known, else nil.
// exact reports a proof: the replicated form of next (chunk.Manifest.
// ReplicatedForm) hashes to old, which is the case whenever old was
// replicated, or equals prev's replicated form. With prev unknown and old
// not the replicated form of next (old was coded, or the record lies) it
// returns exact false and no error: the size and the git-annex key's hash
// checked by the get are then the check. A proof that fails is
// ErrBadSuccessor.
func CheckSuccessor(old cid.Cid, prev, next *chunk.Manifest) (exact bool, err error) {
	nf, err := next.ReplicatedForm().CID()
	if err != nil {
		return false, fmt.Errorf("checking the successor of %s: %w", old, err)
	}
	if nf == old {
		return true, nil
	}
	if prev == nil {
		return false, nil
	}
	pf, err := prev.ReplicatedForm().CID()
	if err != nil {
		return false, fmt.Errorf("checking the successor of %s: %w", old, err)
	}
	if pf != nf || prev.Size != next.Size {
		return false, fmt.Errorf("%w: %s (%d bytes) is not %s (%d bytes)", ErrBadSuccessor, nf, next.Size, pf, prev.Size)
	}
	return true, nil
}

// ResolveChecked is Resolve for a get: every step of the chain is checked
// with CheckSuccessor, each successor's manifest read here or asked of the
// members, and a step that fails ends it with ErrBadSuccessor. A step
// whose manifest no member gives is not taken: the chain ends before it.
func (r *Replicator) ResolveChecked(ctx context.Context, root cid.Cid) (cid.Cid, error) {
	c := r.chain(root)
	if len(c) == 1 {
		return root, nil
	}
	prev, _ := r.store.Manifest(ctx, root) // nil unless old's manifest is still held here
	for i, next := range c[1:] {
		m, err := r.manifestOf(ctx, next)
		if err != nil {
			r.log.Debug("successor's manifest not found; not following", "cid", c[i], "successor", next, "err", err)
			return c[i], nil
		}
		exact, err := CheckSuccessor(c[i], prev, m)
		if err != nil {
			return cid.Undef, fmt.Errorf("resolving %s: %w", root, err)
		}
		if !exact {
			r.log.Debug("successor not provable from its manifest; the get checks size and key", "cid", c[i], "successor", next)
		}
		prev = m
	}
	return c[len(c)-1], nil
}

// manifestOf returns the manifest of root from the store, else from the
// first connected member that gives it (the exchange checks it against
// root).
func (r *Replicator) manifestOf(ctx context.Context, root cid.Cid) (*chunk.Manifest, error) {
	if m, err := r.store.Manifest(ctx, root); err == nil {
		return m, nil
	} else if !errors.Is(err, chunk.ErrNotFound) {
		return nil, err
	}
	pl, ok := r.currentPolicy()
	if !ok {
		return nil, fmt.Errorf("manifest %s: %w", root, ErrNoSwarm)
	}
	ctx, cancel := context.WithTimeout(ctx, manifestAsk)
	defer cancel()
	var last error = chunk.ErrNotFound
	for _, m := range pl.def.Members {
		p := peer.ID(m.Peer)
		if p == pl.self || !r.connected(p) {
			continue
		}
		man, err := r.x.FetchManifest(ctx, p, root)
		if err == nil {
			return man, nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("manifest %s: %w", root, last)
}
