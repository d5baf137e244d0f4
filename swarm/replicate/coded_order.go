package replicate

import (
	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// setOrderKey is the rendezvous key that orders the candidates of a coded
// placement (docs/ERASURE.md "Put"): the CID of the content's first chunk,
// not its root. A 1 MiB edit in the middle of a file changes the root but
// not the first chunk, so shard set i of the new version goes to the member
// holding set i of the old one, which already holds every shard of the
// chunks the edit left alone and fetches and stores only the new ones.
// Keyed by the root, the n sets would be dealt to the members in another
// order and each member would store a whole new set. Distinct files still
// spread as rendezvous hashing spreads them (their first chunks differ).
func setOrderKey(m *chunk.Manifest, root cid.Cid) cid.Cid {
	if len(m.Chunks) == 0 || !m.Chunks[0].CID.Defined() {
		return root
	}
	return m.Chunks[0].CID
}
