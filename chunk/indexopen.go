package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/annex-swarm/annex-swarm/internal/boltpages"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements docs/STORE.md#checking-the-index-at-open.

// indexName is the index file in the store folder.
const indexName = "index.db"

// guardIndex runs fn, which reads the index through bbolt's mmap, turning a
// fault on the mapping (SIGBUS on a page past the end of the file) or a
// panic of bbolt on a page it cannot make sense of into an error wrapping
// ErrIndexDamaged. It is the last line of defence; checkIndexFile is the
// first. debug.SetPanicOnFault applies to the calling goroutine only.
func guardIndex(what string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %w: %v", what, ErrIndexDamaged, r)
		}
	}()
	return fn()
}

// openIndex checks index.db, opens it and runs the consistency check of
// docs/STORE.md#checking-the-index-at-open. A damaged index, or a missing
// one next to stored objects, is an error wrapping ErrIndexDamaged.
func (s *Store) openIndex() error {
	path := filepath.Join(s.dir, indexName)
	if err := checkIndexFile(path); err != nil {
		fresh := errors.Is(err, fs.ErrNotExist)
		if !fresh {
			if st, serr := os.Stat(path); serr == nil && st.Size() == 0 {
				fresh = true // created and never written: bbolt initialises it
			}
		}
		if !fresh {
			return fmt.Errorf("opening store index %s: %w: %v", path, ErrIndexDamaged, err)
		}
		var has bool
		var herr error
		if s.remote != nil {
			has, herr = backendHasObjects(context.Background(), s.remote)
		} else {
			has, herr = hasObjects(s.dir)
		}
		if herr != nil {
			return fmt.Errorf("opening store index: %w", herr)
		}
		if has {
			what := "missing"
			if !errors.Is(err, fs.ErrNotExist) {
				what = "empty"
			}
			return fmt.Errorf("opening store index %s: %w: %s next to stored objects", path, ErrIndexDamaged, what)
		}
	}
	var db *bolt.DB
	err := guardIndex("opening store index "+path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
		return err
	})
	if errors.Is(err, bolt.ErrTimeout) {
		return fmt.Errorf("opening store %s: in use by another process", s.dir)
	}
	if err != nil {
		if !errors.Is(err, ErrIndexDamaged) {
			err = fmt.Errorf("%w: %w", ErrIndexDamaged, err)
		}
		return fmt.Errorf("opening store index %s: %w", path, err)
	}
	s.db = db
	s.pages = boltpages.New(db, trimEvery)
	s.listGen.Add(1) // a listing of an index opened before is stale
	var format uint64
	err = guardIndex("checking store index "+path, func() error {
		return db.Update(func(tx *bolt.Tx) error {
			var err error
			if format, err = initIndex(tx); err != nil {
				return err
			}
			s.stats = readCounters(tx)
			return touchBuckets(tx)
		})
	})
	if err == nil && format < indexFormat {
		err = s.migrate(format)
	}
	if err != nil {
		s.pages.Stop()
		db.Close()
		return fmt.Errorf("opening store index %s: %w", path, err)
	}
	return nil
}

// touchBuckets walks to the first and last entry of every bucket: a few
// pages each, whatever the size of the index, enough to find a bucket whose
// root or edges are gone.
func touchBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketChunks, bucketRefs, bucketManifests} {
		b := tx.Bucket(name)
		if b == nil {
			return fmt.Errorf("%w: bucket %s missing", ErrIndexDamaged, name)
		}
		c := b.Cursor()
		c.First()
		c.Last()
	}
	return nil
}

// migrate brings an index of an older format to indexFormat. Format 1 kept
// manifests only in the index: format 2 writes each as an object (and its
// pin marker), so that RebuildIndex finds them. A crash in the middle is
// harmless: the format is raised last and the objects are written again.
func (s *Store) migrate(from uint64) error {
	type rec struct {
		root   cid.Cid
		enc    []byte
		pinned bool
	}
	var recs []rec
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketManifests).ForEach(func(k, v []byte) error {
			id, err := cidFromBytes(k, CodecCBOR)
			if err != nil || len(v) < 1 {
				return fmt.Errorf("manifest %x: bad record", k)
			}
			recs = append(recs, rec{id, append([]byte(nil), v[1:]...), v[0]&flagPinned != 0})
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("migrating index format %d: %w", from, err)
	}
	for _, r := range recs {
		if err := s.persistManifest(r.root, r.enc, r.pinned); err != nil {
			return fmt.Errorf("migrating index format %d: %w", from, err)
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, u64(indexFormat))
	})
	if err != nil {
		return fmt.Errorf("migrating index format %d: %w", from, err)
	}
	s.log.Info("index migrated", "from", from, "to", indexFormat, "manifests", len(recs))
	return nil
}
