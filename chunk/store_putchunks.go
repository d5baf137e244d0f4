package chunk

import (
	"context"
	"errors"
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
	errs, _ = s.putChunks(ctx, items, nil, nil)
	return errs
}

// PutContent stores a whole content at once: the chunks as PutChunks does
// and the manifest m as PutManifest does, recorded in the same index
// transaction, so a small content costs one commit. items must be every
// chunk of m not yet held. It returns m's CID; the manifest is recorded
// only when every item is stored or already held, else the error is the
// first failure.
func (s *Store) PutContent(ctx context.Context, m *Manifest, items []ChunkData) (cid.Cid, error) {
	enc, err := m.Encode()
	if err != nil {
		return cid.Undef, fmt.Errorf("recording manifest: %w", err)
	}
	root := ManifestCID(enc)
	want := make(map[string]bool, len(m.Chunks))
	for _, c := range m.Chunks {
		want[c.CID.KeyString()] = true
	}
	for _, it := range items {
		if !want[it.CID.KeyString()] {
			return cid.Undef, fmt.Errorf("storing %s: chunk %s is not in its manifest", root, it.CID)
		}
	}
	var need []cid.Cid
	for _, ck := range m.Chunks {
		need = append(need, ck.CID)
	}
	if err := s.putWithManifest(ctx, root, m, enc, items, need); err != nil {
		return cid.Undef, fmt.Errorf("storing %s: %w", root, err)
	}
	return root, nil
}

// putWithManifest stores items and records the manifest m (encoded as enc,
// with CID root) in one index transaction, once every chunk of need is
// held; otherwise nothing is recorded. The manifest object is written
// before the index records it (docs/STORE.md#objects) and unlinked again
// when the transaction fails.
func (s *Store) putWithManifest(ctx context.Context, root cid.Cid, m *Manifest, enc []byte, items []ChunkData, need []cid.Cid) error {
	k := root.KeyString()
	s.hold(k)
	_, recorded, err := s.manifestFlags(root)
	var object func() ([]string, error)
	if !recorded {
		// Written beside the chunk files, its folder synced with theirs.
		object = func() ([]string, error) { return s.writeManifestObjects(root, enc, false) }
	}
	if err == nil {
		var errs []error
		errs, err = s.putChunks(ctx, items, object, func(tx *bolt.Tx, c *counters) error {
			for _, id := range need {
				if _, ok := chunkSize(tx, id.Bytes()); !ok {
					return fmt.Errorf("chunk %s: %w", id, ErrNotFound)
				}
			}
			return recordManifest(tx, c, root, m, enc, 0)
		})
		if ierr := errors.Join(errs...); ierr != nil {
			err = ierr
		}
	}
	s.unhold(k)
	if err != nil {
		s.unlinkUnrecorded(root) // a held manifest is never unlinked
	}
	return err
}

// putChunks is PutChunks; also, when not nil, it runs object beside the
// chunk files' writes (it writes other objects and returns their folders,
// synced with the chunks' before the index records anything), and record
// in the index transaction after the chunks are added. An error of either
// fails every chunk of the batch and is returned as txErr.
func (s *Store) putChunks(ctx context.Context, items []ChunkData, object func() ([]string, error), record func(*bolt.Tx, *counters) error) (errs []error, txErr error) {
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
	if record != nil && len(todo) > 0 && errors.Join(errs...) != nil {
		// A whole content is stored or nothing: write no file for it.
		s.unhold(held(todo)...)
		fail(todo, errors.New("not stored: another chunk of its content failed"))
		return errs, nil
	}
	if len(todo) == 0 {
		if object != nil {
			var dirs []string
			if dirs, txErr = object(); txErr == nil {
				txErr = syncDirs(setOf(dirs))
			}
		}
		if record != nil && txErr == nil {
			txErr = s.update(record)
		}
		return errs, txErr
	}
	if err := ctx.Err(); err != nil {
		s.unhold(held(todo)...)
		fail(todo, err)
		return errs, nil
	}
	release, err := s.reserve(total)
	if err != nil {
		s.unhold(held(todo)...)
		fail(todo, err)
		return errs, nil
	}
	defer release()

	// Write and sync the files side by side: each fsync waits on the disk.
	var wg sync.WaitGroup
	for _, i := range todo {
		wg.Go(func() { errs[i] = s.writeFile(ctx, items[i].CID, items[i].Data) })
	}
	var objDirs []string
	var objErr error
	if object != nil {
		wg.Go(func() { objDirs, objErr = object() })
	}
	wg.Wait()
	var written []int
	dirs := setOf(objDirs)
	for _, i := range todo {
		if errs[i] != nil {
			s.unhold(items[i].CID.KeyString())
			continue
		}
		if s.remote == nil {
			dirs[filepath.Dir(s.chunkPath(items[i].CID))] = true
		}
		written = append(written, i)
	}
	if len(written) == 0 {
		return errs, objErr
	}
	err = objErr
	if err == nil {
		err = syncDirs(dirs)
	}
	if err == nil {
		err = s.update(func(tx *bolt.Tx, c *counters) error {
			for _, i := range written {
				if err := addChunk(tx, c, items[i].CID.Bytes(), len(items[i].Data)); err != nil {
					return err
				}
			}
			if record != nil {
				return record(tx, c)
			}
			return nil
		})
	}
	txErr = err
	s.unhold(held(written)...)
	if err != nil {
		ids := make([]cid.Cid, len(written))
		for j, i := range written {
			ids[j] = items[i].CID
		}
		s.unlinkUnused(ids)
		fail(written, err)
	}
	return errs, txErr
}

// setOf is the set of the strings of list.
func setOf(list []string) map[string]bool {
	set := make(map[string]bool, len(list))
	for _, v := range list {
		set[v] = true
	}
	return set
}
