package replicate

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/rules"
)

// The placement policy (docs/REPLICATION.md "Counting", "Placement"):
// who counts, who is asked first.

// policy is the part of the definition the replicator works from.
type policy struct {
	def     *rules.Definition
	self    peer.ID
	storage bool // this member has role storage
	copies  int
	min     int
	grace   time.Duration
}

// currentPolicy returns the policy of the adopted definition, or false when
// no swarm is joined or this host is not a member of it.
func (r *Replicator) currentPolicy() (policy, bool) {
	def := r.members.Current()
	if def == nil {
		return policy{}, false
	}
	me, ok := def.Member(rules.PeerID(r.host.ID()))
	if !ok {
		return policy{}, false
	}
	rep := def.Replication
	return policy{def: def, self: r.host.ID(), storage: me.Role == rules.RoleStorage,
		copies: max(rep.Copies, 1), min: max(min(rep.CopiesMin, rep.Copies), 1), grace: rep.RepairAfter}, true
}

// isStorage reports whether p is a storage member of the policy's definition.
func (pl policy) isStorage(p peer.ID) bool {
	m, ok := pl.def.Member(rules.PeerID(p))
	return ok && m.Role == rules.RoleStorage
}

// storagePeers lists the storage members other than this host.
func (pl policy) storagePeers() []peer.ID {
	var out []peer.ID
	for _, m := range pl.def.Members {
		if m.Role == rules.RoleStorage && peer.ID(m.Peer) != pl.self {
			out = append(out, peer.ID(m.Peer))
		}
	}
	return out
}

// connected reports whether this host has a connection to p.
func (r *Replicator) connected(p peer.ID) bool {
	return r.host.Network().Connectedness(p) == network.Connected
}

// score is p's rendezvous weight for root: the first 8 bytes of
// SHA-256(root's binary CID ‖ p's binary peer ID).
func score(root cid.Cid, p peer.ID) uint64 {
	h := sha256.New()
	h.Write(root.Bytes())
	h.Write([]byte(p))
	return binary.BigEndian.Uint64(h.Sum(nil)[:8])
}

// rank sorts ps by descending rendezvous weight for root, in place.
func rank(root cid.Cid, ps []peer.ID) []peer.ID {
	slices.SortFunc(ps, func(a, b peer.ID) int {
		sa, sb := score(root, a), score(root, b)
		switch {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	return ps
}

// order returns the placement order of cands for root: by rendezvous
// weight, except that a member adding a group not yet covered (by holders
// or by members picked before it) goes before one that adds none.
func order(root cid.Cid, def *rules.Definition, cands, holders []peer.ID) []peer.ID {
	covered := map[string]bool{}
	groups := func(p peer.ID) []string {
		m, _ := def.Member(rules.PeerID(p))
		return m.Groups
	}
	for _, h := range holders {
		for _, g := range groups(h) {
			covered[g] = true
		}
	}
	left := rank(root, slices.Clone(cands))
	out := make([]peer.ID, 0, len(left))
	for len(left) > 0 {
		pick := 0
		for i, p := range left {
			if slices.ContainsFunc(groups(p), func(g string) bool { return !covered[g] }) {
				pick = i
				break
			}
		}
		p := left[pick]
		left = slices.Delete(left, pick, pick+1)
		for _, g := range groups(p) {
			covered[g] = true
		}
		out = append(out, p)
	}
	return out
}

// candidates returns, in placement order, the connected storage members
// that are not in skip and did not refuse for lack of room lately.
func (r *Replicator) candidates(pl policy, root cid.Cid, skip map[peer.ID]bool, holders []peer.ID) []peer.ID {
	r.mu.Lock()
	var cands []peer.ID
	for _, p := range pl.storagePeers() {
		if skip[p] || !r.connected(p) {
			continue
		}
		if t, ok := r.noSpace[p]; ok && time.Since(t) < noSpaceFor {
			continue
		}
		cands = append(cands, p)
	}
	r.mu.Unlock()
	return order(root, pl.def, cands, holders)
}

// addPending records a placement of root on p in flight from here; the
// returned func removes it and records when it ended (the repair round
// does not act on answers older than that, repair.go).
func (r *Replicator) addPending(root cid.Cid, p peer.ID) func() {
	k := root.KeyString()
	r.mu.Lock()
	if r.pending[k] == nil {
		r.pending[k] = map[peer.ID]bool{}
	}
	r.pending[k][p] = true
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		delete(r.pending[k], p)
		if len(r.pending[k]) == 0 {
			delete(r.pending, k)
		}
		r.ended[k] = time.Now()
		r.mu.Unlock()
	}
}

// isManifest checks that root can name content.
func isManifest(root cid.Cid) error {
	if !chunk.IsManifestCID(root) {
		return fmt.Errorf("%s is not a manifest CID: %w", root, chunk.ErrBadCID)
	}
	return nil
}

// poke wakes the receiver of c without blocking.
func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
