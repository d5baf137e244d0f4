package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"

	cid "github.com/ipfs/go-cid"
)

// This file is the part of Fsck (docs/STORE.md#fsck) that looks at the
// objects themselves when they live in a Backend.

// fsckRemoteOrphans finds the backend's objects that are neither recorded
// nor held by a write in flight, and deletes them with repair. Orphans are
// reported by their object names.
func (s *Store) fsckRemoteOrphans(ctx context.Context, repair bool, rep *FsckReport) error {
	type object struct {
		kind ObjectKind
		id   cid.Cid
	}
	var objs []object
	err := s.remote.List(ctx, func(kind ObjectKind, id cid.Cid) error {
		objs = append(objs, object{kind, id})
		return nil
	})
	if err != nil {
		return fmt.Errorf("fsck: listing objects: %w", err)
	}
	for _, o := range objs {
		orphan, err := s.remoteOrphan(o.kind, o.id)
		if err != nil {
			return err
		}
		if !orphan {
			continue
		}
		rep.Orphans = append(rep.Orphans, ObjectName(o.kind, o.id))
		if repair {
			if err := s.remote.Delete(ctx, o.kind, o.id); err != nil {
				return fmt.Errorf("fsck: removing orphan: %w", err)
			}
		}
	}
	return nil
}

func (s *Store) remoteOrphan(kind ObjectKind, id cid.Cid) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.holds[id.KeyString()] > 0 {
		return false, nil
	}
	ok, err := s.recorded(kind, id)
	if err != nil {
		return false, fmt.Errorf("fsck: %w", err)
	}
	return !ok, nil
}

// listManifests lists the manifest objects the backend holds.
func (s *Store) listManifests(ctx context.Context) (map[cid.Cid]bool, error) {
	out := map[cid.Cid]bool{}
	err := s.remote.List(ctx, func(kind ObjectKind, id cid.Cid) error {
		if kind == ObjectManifest {
			out[id] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing manifest objects: %w", err)
	}
	return out, nil
}

// hasManifestObject reports whether the manifest's object is stored: in
// listed (the backend's listing) or as a file.
func (s *Store) hasManifestObject(id cid.Cid, listed map[cid.Cid]bool) bool {
	if s.remote != nil {
		return listed[id]
	}
	_, err := os.Stat(objectPath(s.dir, ObjectManifest, id))
	return !errors.Is(err, fs.ErrNotExist)
}
