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
	"slices"
	"strconv"
	"sync"
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
	return s.GetChunkInto(ctx, id, nil)
}

// GetChunkInto is GetChunk reading into buf when it is large enough (the
// result then aliases buf), so that a reader of many chunks can reuse a few
// buffers instead of allocating one per chunk.
func (s *Store) GetChunkInto(ctx context.Context, id cid.Cid, buf []byte) ([]byte, error) {
	return s.getChunkInto(ctx, id, buf, true)
}

// ReadChunkInto is GetChunkInto without hashing the bytes: it checks only
// that the chunk is indexed and its file has the recorded size (a missing
// or short file is re-checked and quarantined as by GetChunk). The bytes
// may therefore be corrupt; the caller MUST hand them only to a receiver
// that verifies them (the chunk exchange's server does: the getter always
// verifies and reports a mismatch, docs/STORE.md "Who verifies what").
func (s *Store) ReadChunkInto(ctx context.Context, id cid.Cid, buf []byte) ([]byte, error) {
	return s.getChunkInto(ctx, id, buf, false)
}

// getChunkInto reads a chunk, verifying it against its CID when verify is
// set.
func (s *Store) getChunkInto(ctx context.Context, id cid.Cid, buf []byte, verify bool) ([]byte, error) {
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
	var data []byte
	if s.remote != nil {
		data, err = s.readRemote(ctx, id, size)
	} else {
		data, err = readFileInto(s.chunkPath(id), size, buf)
	}
	if err == nil && (!verify || VerifyChunk(id, data) == nil) {
		return data, nil
	}
	if s.remote != nil && backendFault(err) {
		// The account failing says nothing about the chunk: keep it.
		return nil, fmt.Errorf("reading chunk %s: %w", id, err)
	}
	return s.quarantine(ctx, id)
}

// readFileInto reads the file at path, which must be exactly size bytes,
// into buf (grown when too small).
func readFileInto(path string, size int64, buf []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if int64(cap(buf)) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, err
	}
	// One byte more means the file is longer than the index says.
	var one [1]byte
	if n, _ := f.Read(one[:]); n > 0 {
		return nil, fmt.Errorf("chunk file %s longer than %d bytes", path, size)
	}
	return buf, nil
}

// quarantine re-checks a chunk that failed to read or verify, under mu so
// that no write or removal of it runs at the same time. If it is still bad,
// it drops it from the index and moves the file to quarantine/.
func (s *Store) quarantine(ctx context.Context, id cid.Cid) ([]byte, error) {
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
	var data []byte
	var rerr error
	if s.remote != nil {
		data, rerr = s.remote.Read(ctx, ObjectChunk, id, MaxChunkSize)
		if backendFault(rerr) {
			return nil, fmt.Errorf("reading chunk %s: %w", id, rerr)
		}
	} else {
		data, rerr = os.ReadFile(path)
	}
	if rerr == nil && VerifyChunk(id, data) == nil {
		if int64(len(data)) == size {
			return data, nil // rewritten meanwhile
		}
		// The file is good and the index wrong: a file that matches its
		// CID is never quarantined.
		return data, s.fixSize(id, size, len(data))
	}
	err = s.update(func(tx *bolt.Tx, c *counters) error {
		c.corrupt++
		_, err := dropChunk(tx, c, id.Bytes())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quarantining chunk %s: %w", id, err)
	}
	if s.remote != nil {
		err = s.remote.Quarantine(ctx, ObjectChunk, id)
	} else {
		err = quarantineFile(s.dir, path, id)
	}
	if err != nil {
		s.log.Warn("moving corrupt chunk to quarantine", "cid", id, "err", err)
	}
	s.log.Warn("corrupt chunk quarantined", "cid", id, "read_error", rerr)
	return nil, fmt.Errorf("reading chunk %s: %w", id, ErrCorrupt)
}

// fixSize corrects the size the index records for a chunk whose file
// matches its CID. Call with mu held.
func (s *Store) fixSize(id cid.Cid, was int64, size int) error {
	s.log.Warn("index had the wrong size of a chunk", "cid", id, "index", was, "file", size)
	err := s.update(func(tx *bolt.Tx, c *counters) error {
		if _, err := dropChunk(tx, c, id.Bytes()); err != nil {
			return err
		}
		return addChunk(tx, c, id.Bytes(), size)
	})
	if err != nil {
		return fmt.Errorf("fixing the size of chunk %s: %w", id, err)
	}
	return nil
}

// quarantineFile moves the file of a corrupt object to
// quarantine/<cid>.<unix-nanoseconds>.
func quarantineFile(dir, path string, id cid.Cid) error {
	dst := filepath.Join(dir, "quarantine", id.String()+"."+strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := os.Rename(path, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Manifest returns a recorded manifest, or an error wrapping ErrNotFound.
func (s *Store) Manifest(ctx context.Context, root cid.Cid) (*Manifest, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("reading manifest %s: %w", root, err)
	}
	var enc []byte
	err := s.view(func(tx *bolt.Tx) error {
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

// Manifests lists the CIDs of all recorded manifests. While no manifest was
// added or removed since the last listing it answers from that listing
// without reading the index; the slice returned is the caller's.
func (s *Store) Manifests(ctx context.Context) ([]cid.Cid, error) {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	// The generation is read before the walk: a change committed during
	// it bumps the generation after, and the next call walks again.
	gen := s.listGen.Load()
	if s.listedGen == gen {
		return slices.Clone(s.listed), nil
	}
	out, err := s.walkManifests(ctx)
	if err != nil {
		return nil, err
	}
	s.listed, s.listedGen = out, gen
	return slices.Clone(out), nil
}

// walkManifests lists the manifests by walking the index.
func (s *Store) walkManifests(ctx context.Context) ([]cid.Cid, error) {
	var out []cid.Cid
	err := s.view(func(tx *bolt.Tx) error {
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
	err = s.view(func(tx *bolt.Tx) error {
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

// writeAhead is how many chunks WriteTo reads and verifies ahead of the
// one it writes: it bounds WriteTo's memory to writeAhead chunk buffers.
const writeAhead = 4

// WriteTo writes the content of a manifest to w, verifying every chunk on
// the way, and returns the bytes written. Chunks are read and verified up to
// writeAhead ahead of the writer, in parallel, into reused buffers.
func (s *Store) WriteTo(ctx context.Context, root cid.Cid, w io.Writer) (int64, error) {
	m, err := s.Manifest(ctx, root)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		data []byte
		err  error
	}
	free := make(chan []byte, writeAhead)
	for range writeAhead {
		free <- nil // allocated on first use
	}
	queue := make(chan chan result, writeAhead)
	var readers sync.WaitGroup
	defer readers.Wait()
	readers.Go(func() {
		defer close(queue)
		for _, c := range m.Chunks {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				return
			}
			res := make(chan result, 1)
			readers.Go(func() {
				data, err := s.GetChunkInto(ctx, c.CID, buf)
				res <- result{data, err}
			})
			select {
			case queue <- res:
			case <-ctx.Done():
				return
			}
		}
	})
	var n int64
	i := 0
	for res := range queue {
		r := <-res
		c := m.Chunks[i]
		switch {
		case r.err != nil:
			err = fmt.Errorf("reassembling %s: chunk %d: %w", root, i, r.err)
		case len(r.data) != int(c.Length):
			err = fmt.Errorf("reassembling %s: chunk %d is %d bytes, manifest says %d: %w", root, i, len(r.data), c.Length, ErrCorrupt)
		}
		if err == nil {
			var k int
			k, err = w.Write(r.data)
			n += int64(k)
			if err != nil {
				err = fmt.Errorf("reassembling %s: %w", root, err)
			}
		}
		if err != nil {
			cancel()
			for range queue {
			}
			return n, err
		}
		free <- r.data
		i++
	}
	return n, nil
}
