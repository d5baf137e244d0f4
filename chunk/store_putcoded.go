package chunk

import (
	"context"
	"fmt"
	"io"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// PutCoded stores a content to be erasure-coded with k data and m parity
// shards (docs/ERASURE.md "Put"): it chunks r as Put does, stores the
// chunks (not the shards: the uploader serves shards by coding its chunks
// on demand) and records the version 2 manifest, pinned as Put pins. It
// reads r to its end, which must be size bytes.
func (s *Store) PutCoded(ctx context.Context, r io.Reader, size int64, key string, k, m int) (cid.Cid, *Manifest, error) {
	if size < 0 {
		return cid.Undef, nil, fmt.Errorf("storing coded content: negative size %d", size)
	}
	man, err := BuildCodedManifest(ctx, &sizeReader{r: r, n: size}, key, s.params, k, m, func(ref ChunkRef, data []byte, _ [][]byte) error {
		if err := s.PutChunks(ctx, []ChunkData{{CID: ref.CID, Data: data}})[0]; err != nil {
			return fmt.Errorf("storing chunk %s: %w", ref.CID, err)
		}
		return nil
	})
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("storing coded content: %w", err)
	}
	if man.Size != size {
		return cid.Undef, nil, fmt.Errorf("storing coded content: %d bytes, declared %d", man.Size, size)
	}
	enc, err := man.Encode()
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("storing coded content: %w", err)
	}
	root := ManifestCID(enc)
	err = s.recordWithObject(root, enc, flagPinned, nil, func(tx *bolt.Tx, c *counters) error {
		return recordManifest(tx, c, root, man, enc, flagPinned)
	})
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("indexing %s: %w", root, err)
	}
	return root, man, nil
}
