package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements the reads of docs/STORE.md#reads.

// HasChunk reports whether the store holds the chunk.
func (s *Store) HasChunk(id cid.Cid) (bool, error) {
	_, ok, err := s.present(id.Bytes())
	if err != nil {
		return false, fmt.Errorf("looking up chunk %s: %w", id, err)
	}
	return ok, nil
}

// GetChunk reads a chunk and verifies it. A chunk that fails verification is
// quarantined and dropped from the index, and the error wraps ErrCorrupt.
func (s *Store) GetChunk(ctx context.Context, id cid.Cid) ([]byte, error) {
	if !IsChunkCID(id) {
		return nil, fmt.Errorf("reading chunk %s: %w", id, ErrBadCID)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", id, err)
	}
	size, ok, err := s.present(id.Bytes())
	if err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("reading chunk %s: %w", id, ErrNotFound)
	}
	data, err := os.ReadFile(s.chunkPath(id))
	if err == nil && int64(len(data)) == size && VerifyChunk(id, data) == nil {
		return data, nil
	}
	return s.quarantine(id)
}

// quarantine re-checks a chunk that failed to read or verify, under mu so
// that no write or removal of it runs at the same time. If it is still bad,
// it drops it from the index and moves the file to quarantine/.
func (s *Store) quarantine(id cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	size, ok, err := s.present(id.Bytes())
	if err != nil {
		return nil, fmt.Errorf("reading chunk %s: %w", id, err)
	}
	if !ok {
		return nil, fmt.Errorf("reading chunk %s: %w", id, ErrNotFound)
	}
	path := s.chunkPath(id)
	data, rerr := os.ReadFile(path)
	if rerr == nil && int64(len(data)) == size && VerifyChunk(id, data) == nil {
		return data, nil // rewritten meanwhile
	}
	err = s.update(func(tx *bolt.Tx, c *counters) error {
		c.corrupt++
		_, err := dropChunk(tx, c, id.Bytes())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantining chunk %s: %w", id, err)
	}
	dst := filepath.Join(s.dir, "quarantine", id.String()+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(path, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("moving corrupt chunk to quarantine", "cid", id, "err", err)
	}
	s.log.Warn("corrupt chunk quarantined", "cid", id, "read_error", rerr)
	return nil, fmt.Errorf("reading chunk %s: %w", id, ErrCorrupt)
}

// Manifest returns a recorded manifest, or an error wrapping ErrNotFound.
func (s *Store) Manifest(ctx context.Context, root cid.Cid) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", root, err)
	}
	var enc []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketManifests).Get(root.Bytes()); len(v) > 0 {
			enc = bytes.Clone(v[1:])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", root, err)
	}
	if enc == nil {
		return nil, fmt.Errorf("reading manifest %s: %w", root, ErrNotFound)
	}
	m, err := DecodeManifest(enc)
	if err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", root, err)
	}
	return m, nil
}

// Manifests lists the CIDs of all recorded manifests.
func (s *Store) Manifests(ctx context.Context) ([]cid.Cid, error) {
	var out []cid.Cid
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketManifests).ForEach(func(k, _ []byte) error {
			id, err := cidFromBytes(k, CodecCBOR)
			if err != nil {
				return err
			}
			out = append(out, id)
			return ctx.Err()
		})
	})
	if err != nil {
		return nil, fmt.Errorf("listing manifests: %w", err)
	}
	return out, nil
}

// Missing returns the chunks of a recorded manifest that the store does not
// hold, in file order; none means the content is complete.
func (s *Store) Missing(ctx context.Context, root cid.Cid) ([]ChunkRef, error) {
	m, err := s.Manifest(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []ChunkRef
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, c := range m.Chunks {
			if _, ok := chunkSize(tx, c.CID.Bytes()); !ok {
				out = append(out, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("checking chunks of %s: %w", root, err)
	}
	return out, nil
}

// WriteTo writes the content of a manifest to w, verifying every chunk on
// the way, and returns the bytes written. It holds one chunk in memory.
func (s *Store) WriteTo(ctx context.Context, root cid.Cid, w io.Writer) (int64, error) {
	m, err := s.Manifest(ctx, root)
	if err != nil {
		return 0, err
	}
	var n int64
	for i, c := range m.Chunks {
		data, err := s.GetChunk(ctx, c.CID)
		if err != nil {
			return n, fmt.Errorf("reassembling %s: chunk %d: %w", root, i, err)
		}
		if len(data) != int(c.Length) {
			return n, fmt.Errorf("reassembling %s: chunk %d is %d bytes, manifest says %d: %w", root, i, len(data), c.Length, ErrCorrupt)
		}
		k, err := w.Write(data)
		n += int64(k)
		if err != nil {
			return n, fmt.Errorf("reassembling %s: %w", root, err)
		}
	}
	return n, nil
}
