package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements docs/STORE.md#fsck.

// FsckReport is what Fsck found. Corrupt chunks are always quarantined; the
// other findings are only acted on with repair.
type FsckReport struct {
	Checked      int       // chunks read and verified
	Corrupt      []cid.Cid // chunks that failed verification, now quarantined
	Orphans      []string  // files under chunks/ that the index does not list
	Unreferenced []cid.Cid // chunks held that no manifest references
	Incomplete   []cid.Cid // manifests with chunks missing (after quarantine)
	Unbacked     []cid.Cid // manifests recorded without their object (docs/STORE.md#objects)
	Counters     bool      // the counters disagreed with the index
	Repaired     bool      // orphans and unreferenced chunks were removed, counters fixed
}

// Clean reports whether Fsck found nothing wrong. Incomplete manifests are
// not wrong in themselves (partial holding) and do not count.
func (r FsckReport) Clean() bool {
	return len(r.Corrupt) == 0 && len(r.Orphans) == 0 && len(r.Unreferenced) == 0 && len(r.Unbacked) == 0 && !r.Counters
}

// Fsck reads and verifies every chunk (quarantining the corrupt ones), looks
// for orphaned files (chunks, manifest objects and pin markers nothing
// records), unreferenced chunks, incomplete manifests, manifests without
// their object and wrong counters. With repair it deletes orphans and
// unreferenced chunks, writes the missing manifest objects from the index
// and rewrites the counters. A damaged index is an error wrapping
// ErrIndexDamaged (RebuildIndex repairs it).
func (s *Store) Fsck(ctx context.Context, repair bool) (FsckReport, error) {
	var rep FsckReport
	var ids []cid.Cid
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChunks).ForEach(func(k, _ []byte) error {
			id, err := cidFromBytes(k, cid.Raw)
			if err != nil {
				return fmt.Errorf("%w: index lists %x: %w", ErrIndexDamaged, k, err)
			}
			ids = append(ids, id)
			return nil
		})
	})
	if err != nil {
		return rep, fmt.Errorf("fsck: listing chunks: %w", err)
	}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("fsck: %w", err)
		}
		_, err := s.GetChunk(ctx, id)
		switch {
		case err == nil:
			rep.Checked++
		case errors.Is(err, ErrCorrupt):
			rep.Checked++
			rep.Corrupt = append(rep.Corrupt, id)
		case errors.Is(err, ErrNotFound): // removed meanwhile
		default:
			return rep, fmt.Errorf("fsck: %w", err)
		}
	}
	if err := s.fsckOrphans(ctx, repair, &rep); err != nil {
		return rep, err
	}
	if err := s.fsckIndex(ctx, repair, &rep); err != nil {
		return rep, err
	}
	if repair {
		if err := s.writeUnbacked(ctx, rep.Unbacked); err != nil {
			return rep, err
		}
	}
	rep.Repaired = repair
	return rep, nil
}

// fsckOrphans finds the object files that are neither indexed nor held by
// a write in flight, and deletes them with repair.
func (s *Store) fsckOrphans(ctx context.Context, repair bool, rep *FsckReport) error {
	if s.remote != nil {
		return s.fsckRemoteOrphans(ctx, repair, rep)
	}
	for kind, top := range objectFolders {
		for i := range 256 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("fsck: %w", err)
			}
			dir := filepath.Join(s.dir, top, fmt.Sprintf("%02x", i))
			ents, err := os.ReadDir(dir)
			if err != nil {
				return fmt.Errorf("fsck: %w", err)
			}
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), tempPrefix) {
					continue // a write in flight; Open removes leftovers
				}
				path := filepath.Join(dir, e.Name())
				if err := s.checkOrphan(ObjectKind(kind), path, e.Name(), repair, rep); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// recorded reports whether the index records the object: a chunk held, a
// manifest recorded, a pin of a pinned manifest.
func (s *Store) recorded(kind ObjectKind, id cid.Cid) (bool, error) {
	if kind == ObjectChunk {
		_, ok, err := s.present(id.Bytes())
		return ok, err
	}
	flags, ok, err := s.manifestFlags(id)
	if kind == ObjectPin {
		ok = ok && flags&flagPinned != 0
	}
	return ok, err
}

func (s *Store) checkOrphan(kind ObjectKind, path, name string, repair bool, rep *FsckReport) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := objectID(kind, name)
	if ok && path == objectPath(s.dir, kind, id) {
		if s.holds[id.KeyString()] > 0 {
			return nil
		}
		ok, err := s.recorded(kind, id)
		if err != nil {
			return fmt.Errorf("fsck: %w", err)
		}
		if ok {
			return nil
		}
	}
	rep.Orphans = append(rep.Orphans, path)
	if repair {
		if err := os.RemoveAll(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("fsck: removing orphan: %w", err)
		}
	}
	return nil
}

// fsckIndex finds incomplete manifests, unreferenced chunks and wrong
// counters; with repair it drops the unreferenced chunks and fixes counters.
func (s *Store) fsckIndex(ctx context.Context, repair bool, rep *FsckReport) error {
	var listed map[cid.Cid]bool
	if s.remote != nil {
		var err error
		if listed, err = s.listManifests(ctx); err != nil {
			return fmt.Errorf("fsck: %w", err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var freed []cid.Cid
	fn := func(tx *bolt.Tx, c *counters) error {
		rep.Incomplete, rep.Unreferenced, rep.Unbacked, freed = nil, nil, nil, nil
		var real counters
		real.corrupt = c.corrupt
		err := tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			real.manifests++
			m, err := DecodeManifest(v[1:])
			if err != nil {
				return fmt.Errorf("%w: manifest %x: %w", ErrIndexDamaged, k, err)
			}
			id, _ := cid.Cast(k)
			if !s.hasManifestObject(id, listed) {
				rep.Unbacked = append(rep.Unbacked, id)
			}
			for _, ch := range m.Chunks {
				if _, ok := chunkSize(tx, ch.CID.Bytes()); !ok {
					rep.Incomplete = append(rep.Incomplete, id)
					break
				}
			}
			return ctx.Err()
		})
		if err != nil {
			return err
		}
		var drop [][]byte
		err = tx.Bucket(bucketChunks).ForEach(func(k, v []byte) error {
			if refCount(tx, k) == 0 && s.holds[string(k)] == 0 {
				id, _ := cid.Cast(k)
				rep.Unreferenced = append(rep.Unreferenced, id)
				drop = append(drop, k)
				return nil
			}
			size, _ := chunkSize(tx, k)
			real.used += size
			real.chunks++
			return nil
		})
		if err != nil {
			return err
		}
		unrefUsed := int64(0)
		for _, k := range drop {
			size, _ := chunkSize(tx, k)
			unrefUsed += size
		}
		if real.used+unrefUsed != c.used || real.chunks+int64(len(drop)) != c.chunks || real.manifests != c.manifests {
			rep.Counters = true
		}
		if !repair {
			return nil
		}
		for _, k := range drop {
			if err := tx.Bucket(bucketChunks).Delete(k); err != nil {
				return err
			}
			id, _ := cid.Cast(k)
			freed = append(freed, id)
		}
		*c = real
		return nil
	}
	var err error
	if repair {
		err = s.update(fn)
	} else {
		err = s.view(func(tx *bolt.Tx) error {
			c := readCounters(tx)
			return fn(tx, &c)
		})
	}
	if err != nil {
		return fmt.Errorf("fsck: checking index: %w", err)
	}
	for _, id := range freed {
		s.deleteObject(ObjectChunk, id)
	}
	return nil
}

// writeUnbacked writes the objects of manifests the index records without
// them, from the index.
func (s *Store) writeUnbacked(ctx context.Context, roots []cid.Cid) error {
	for _, root := range roots {
		m, err := s.Manifest(ctx, root)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		var enc []byte
		if err == nil {
			enc, err = m.Encode()
		}
		if err != nil {
			return fmt.Errorf("fsck: %w", err)
		}
		flags, _, err := s.manifestFlags(root)
		if err == nil {
			s.hold(root.KeyString())
			err = s.persistManifest(root, enc, flags&flagPinned != 0)
			s.unhold(root.KeyString())
			s.unlinkUnrecorded(root) // if removed meanwhile
		}
		if err != nil {
			return fmt.Errorf("fsck: writing the object of %s: %w", root, err)
		}
	}
	return nil
}
