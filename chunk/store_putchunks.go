package chunk

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// ChunkData is one chunk handed to PutChunks.
type ChunkData struct {
	CID  cid.Cid
	Data []byte
}

// PutChunks stores several chunks as PutChunk does — each verified, written
// to a temp file, synced and renamed — but syncs each folder once and records
// all of them in one index transaction, so a fetcher storing many chunks pays
// one commit per batch rather than per chunk (docs/STORE.md "Writes"). errs[i]
// is the outcome of items[i]: ErrCorrupt for bytes that do not match their
// CID, ErrNoSpace when the batch does not fit, nil when stored or already held.
func (s *Store) PutChunks(ctx context.Context, items []ChunkData) (errs []error) {
	errs = make([]error, len(items))
	var todo []int
	var total int64
	for i, it := range items {
		if err := VerifyChunk(it.CID, it.Data); err != nil {
			errs[i] = err
			continue
		}
		k := it.CID.KeyString()
		s.hold(k)
		_, ok, err := s.present([]byte(k))
		if err != nil || ok {
			s.unhold(k)
			errs[i] = err
			continue
		}
		todo = append(todo, i)
		total += int64(len(it.Data))
	}
	held := func(idx []int) []string {
		keys := make([]string, len(idx))
		for j, i := range idx {
			keys[j] = items[i].CID.KeyString()
		}
		return keys
	}
	fail := func(idx []int, err error) {
		for _, i := range idx {
			errs[i] = fmt.Errorf("storing chunk %s: %w", items[i].CID, err)
		}
	}
	if len(todo) == 0 {
		return errs
	}
	if err := ctx.Err(); err != nil {
		s.unhold(held(todo)...)
		fail(todo, err)
		return errs
	}
	release, err := s.reserve(total)
	if err != nil {
		s.unhold(held(todo)...)
		fail(todo, err)
		return errs
	}
	defer release()

	// Write and sync the files side by side: each fsync waits on the disk.
	var wg sync.WaitGroup
	for _, i := range todo {
		wg.Go(func() { errs[i] = s.writeFile(items[i].CID, items[i].Data) })
	}
	wg.Wait()
	var written []int
	dirs := map[string]bool{}
	for _, i := range todo {
		if errs[i] != nil {
			s.unhold(items[i].CID.KeyString())
			continue
		}
		dirs[filepath.Dir(s.chunkPath(items[i].CID))] = true
		written = append(written, i)
	}
	if len(written) == 0 {
		return errs
	}
	for dir := range dirs {
		if err = syncDir(dir); err != nil {
			break
		}
	}
	if err == nil {
		err = s.update(func(tx *bolt.Tx, c *counters) error {
			for _, i := range written {
				if err := addChunk(tx, c, items[i].CID.Bytes(), len(items[i].Data)); err != nil {
					return err
				}
			}
			return nil
		})
	}
	s.unhold(held(written)...)
	if err != nil {
		ids := make([]cid.Cid, len(written))
		for j, i := range written {
			ids[j] = items[i].CID
		}
		s.unlinkUnused(ids)
		fail(written, err)
	}
	return errs
}
