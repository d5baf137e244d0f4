package chunk

import (
	"context"
	"fmt"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements the shard holder's part of the store
// (docs/ERASURE.md#store). A shard is stored exactly
// as a chunk is: a content-addressed file under chunks/, verified on write
// and on read, counted against the limit, stored once however many contents
// list it. A recorded coded manifest references the CIDs of its chunks and
// of all its shards, so that the shards a holder keeps stay while the
// manifest is recorded and go with Remove; Fsck verifies them like chunks.

// PutShards stores, for the coded content m, shard index i of its chunks:
// shards[j] is shard i of chunk j (len(shards) == len(m.Chunks)), or nil
// for one not in this call, so that a holder may receive its set in
// batches. Each shard is verified against m.Chunks[j].Shards[i] and written
// as PutChunks writes chunks; the manifest is recorded (as PutManifest does,
// unpinned) in the same index transaction, and only when every given shard
// is stored or already held. It returns m's CID. Errors: ErrBadManifest for a
// manifest that is not coded, ErrCorrupt for a shard that does not match its
// CID, ErrNoSpace when the shards do not fit under the limit; then nothing
// of the call is recorded.
func (s *Store) PutShards(ctx context.Context, m *Manifest, i int, shards [][]byte) (cid.Cid, error) {
	ids, err := m.ShardSet(i)
	if err != nil {
		return cid.Undef, fmt.Errorf("storing shards: %w", err)
	}
	if len(shards) != len(ids) {
		return cid.Undef, fmt.Errorf("storing shards %d: %d given for %d chunks", i, len(shards), len(ids))
	}
	enc, err := m.Encode()
	if err != nil {
		return cid.Undef, fmt.Errorf("storing shards: %w", err)
	}
	root := ManifestCID(enc)
	var items []ChunkData
	seen := make(map[cid.Cid]bool, len(ids))
	for j, data := range shards {
		if data == nil || seen[ids[j]] {
			continue
		}
		seen[ids[j]] = true
		items = append(items, ChunkData{CID: ids[j], Data: data})
	}
	need := make([]cid.Cid, len(items))
	for j, it := range items {
		need[j] = it.CID
	}
	if err := s.putWithManifest(ctx, root, m, enc, items, need); err != nil {
		return cid.Undef, fmt.Errorf("storing shards %d of %s: %w", i, root, err)
	}
	return root, nil
}

// HeldShards returns, in increasing order, the shard indexes i of the
// recorded coded content root for which the store holds shard i of every
// chunk: the shard sets this store can serve in full. It returns an error
// wrapping ErrNotFound for a manifest not recorded and ErrBadManifest for one
// that is not coded.
func (s *Store) HeldShards(ctx context.Context, root cid.Cid) ([]int, error) {
	m, err := s.codedManifest(ctx, root)
	if err != nil {
		return nil, err
	}
	var held []int
	err = s.view(func(tx *bolt.Tx) error {
		for i := range m.Layout.K + m.Layout.M {
			all := true
			for _, c := range m.Chunks {
				if _, ok := chunkSize(tx, c.Shards[i].Bytes()); !ok {
					all = false
					break
				}
			}
			if all {
				held = append(held, i)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking shards of %s: %w", root, err)
	}
	return held, nil
}

// MissingShards returns the positions j of the chunks of the recorded coded
// content root whose shard i the store does not hold, in order.
func (s *Store) MissingShards(ctx context.Context, root cid.Cid, i int) ([]int, error) {
	m, err := s.codedManifest(ctx, root)
	if err != nil {
		return nil, err
	}
	ids, err := m.ShardSet(i)
	if err != nil {
		return nil, fmt.Errorf("checking shards of %s: %w", root, err)
	}
	var missing []int
	err = s.view(func(tx *bolt.Tx) error {
		for j, id := range ids {
			if _, ok := chunkSize(tx, id.Bytes()); !ok {
				missing = append(missing, j)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking shards of %s: %w", root, err)
	}
	return missing, nil
}

// GetShard reads shard i of chunk j of the recorded coded content root,
// verified against its CID as GetChunk verifies a chunk (a corrupt copy is
// quarantined and reported as ErrCorrupt). Callers that already hold the
// manifest read m.Chunks[j].Shards[i] with GetChunk directly.
func (s *Store) GetShard(ctx context.Context, root cid.Cid, j, i int) ([]byte, error) {
	m, err := s.codedManifest(ctx, root)
	if err != nil {
		return nil, err
	}
	if j < 0 || j >= len(m.Chunks) || i < 0 || i >= m.Layout.K+m.Layout.M {
		return nil, fmt.Errorf("reading shard %d of chunk %d of %s: out of range", i, j, root)
	}
	return s.GetChunk(ctx, m.Chunks[j].Shards[i])
}

// codedManifest reads a recorded manifest and requires it to be coded.
func (s *Store) codedManifest(ctx context.Context, root cid.Cid) (*Manifest, error) {
	m, err := s.Manifest(ctx, root)
	if err != nil {
		return nil, err
	}
	if !m.Coded() {
		return nil, fmt.Errorf("%w: %s is a version %d manifest, not a coded one", ErrBadManifest, root, m.Version)
	}
	return m, nil
}

// ShedChunks deletes the whole chunks of the recorded coded content root
// that nothing else needs: referenced by no other manifest, not a shard of
// root (with k = 1 a data shard is its chunk), not held by a write in
// progress. The manifest and every shard stay, so the shard sets held do
// not change. A member that held the same bytes whole under another root
// (replicated before a re-coding, docs/ERASURE.md "Re-coding") and then
// got a shard set of root so keeps only its set once the other root is
// removed. It returns how many chunks it deleted; ErrNotFound wrapped for a
// manifest not recorded, ErrBadManifest for one that is not coded.
func (s *Store) ShedChunks(ctx context.Context, root cid.Cid) (int, error) {
	m, err := s.codedManifest(ctx, root)
	if err != nil {
		return 0, err
	}
	shards := map[string]bool{}
	for _, c := range m.Chunks {
		for _, sh := range c.Shards {
			shards[sh.KeyString()] = true
		}
	}
	s.mu.Lock()
	var freed []cid.Cid
	err = s.update(func(tx *bolt.Tx, c *counters) error {
		freed = freed[:0]
		if tx.Bucket(bucketManifests).Get(root.Bytes()) == nil {
			return ErrNotFound
		}
		seen := map[string]bool{}
		for _, ref := range m.Chunks {
			k := ref.CID.KeyString()
			if seen[k] || shards[k] || s.holds[k] > 0 {
				continue
			}
			seen[k] = true
			if refCount(tx, []byte(k)) > 1 {
				continue // another manifest needs it
			}
			dropped, err := dropChunk(tx, c, []byte(k))
			if err != nil {
				return err
			}
			if dropped {
				freed = append(freed, ref.CID)
			}
		}
		return nil
	})
	if err != nil {
		s.mu.Unlock()
		return 0, fmt.Errorf("shedding the chunks of %s: %w", root, err)
	}
	s.deleteFreedLocked(freed)
	return len(freed), nil
}
