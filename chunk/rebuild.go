package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements docs/STORE.md#rebuilding-the-index.

// RebuildReport is what RebuildIndex found.
type RebuildReport struct {
	Objects    int       // objects listed: chunks, manifests and pin markers
	Chunks     int       // chunks verified and indexed
	Manifests  int       // manifests verified, decoded and indexed
	Pinned     int       // of which stored by Put (a pin marker was found)
	Whole      int       // manifests with every chunk held
	Incomplete []cid.Cid // manifests with chunks missing
	Corrupt    []cid.Cid // objects that failed verification, now quarantined
	KeptAs     string    // where the previous index was kept, "" if there was none
}

// rebuildBatch is how many objects one index transaction of the rebuild
// records.
const rebuildBatch = 2000

// rebuildWorkers is how many objects are read and verified at once.
const rebuildWorkers = 4

// rebuildTemp is the name the new index is built under.
const rebuildTemp = indexName + ".rebuild"

// RebuildIndex recomputes the index of the store in dir from its objects
// (docs/STORE.md#rebuilding-the-index): every chunk is read and verified
// against its CID, every manifest against its CID and decoded, corrupt
// objects are quarantined, and refcounts, the counters and the pinned flags
// are recomputed. The new index is built in a temporary file, synced and
// renamed over index.db; the previous one, if any, is kept as
// index.db.damaged-<unix-nanoseconds>. A kill at any moment leaves a store
// that Open either opens or reports damaged, and that RebuildIndex rebuilds
// again. The store must not be open, here or in another process.
func RebuildIndex(ctx context.Context, dir string, opts Options) (RebuildReport, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "chunkstore")
	var rep RebuildReport
	var src objectSource = dirObjects{dir}
	if opts.Backend != nil {
		src = opts.Backend
	}
	if err := prepareDir(dir, log, opts.Backend == nil); err != nil {
		return rep, fmt.Errorf("rebuilding index: %w", err)
	}
	path := filepath.Join(dir, indexName)
	unlock, err := lockIndex(path)
	if err != nil {
		return rep, fmt.Errorf("rebuilding index of %s: %w", dir, err)
	}
	defer unlock()
	tmp := filepath.Join(dir, rebuildTemp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("rebuilding index: %w", err)
	}
	// The temporary index needs no fsync per transaction: it is synced once
	// at the end, before it replaces index.db.
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{NoSync: true, NoGrowSync: true, Timeout: 500 * time.Millisecond})
	if err != nil {
		return rep, fmt.Errorf("rebuilding index: creating %s: %w", tmp, err)
	}
	rep, err = rebuildFrom(ctx, src, db, log)
	if err == nil {
		err = db.Sync()
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncFile(tmp)
	}
	if err != nil {
		os.Remove(tmp)
		return rep, fmt.Errorf("rebuilding index of %s: %w", dir, err)
	}
	rep.KeptAs, err = replaceIndex(dir, tmp, path)
	if err != nil {
		return rep, fmt.Errorf("rebuilding index of %s: %w", dir, err)
	}
	return rep, nil
}

// lockIndex takes the lock bbolt takes on an open index, so that a rebuild
// never replaces the index of a store some process has open.
func lockIndex(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errors.New("the store is in use by another process")
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// replaceIndex puts the rebuilt index tmp in place of path, keeping the
// previous one under a new name: a hard link first, then a rename over
// path, so that path names the old or the new index at every moment. Where
// hard links are not possible the old one is renamed away first; a kill
// between the two renames leaves no index, which Open reports as damaged.
func replaceIndex(dir, tmp, path string) (keptAs string, err error) {
	if _, err := os.Stat(path); err == nil {
		keptAs = path + ".damaged-" + strconv.FormatInt(time.Now().UnixNano(), 10)
		if lerr := os.Link(path, keptAs); lerr != nil {
			if err := os.Rename(path, keptAs); err != nil {
				return "", fmt.Errorf("keeping the previous index: %w", err)
			}
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if err := os.Rename(tmp, path); err != nil {
		return keptAs, fmt.Errorf("putting the new index in place: %w", err)
	}
	return keptAs, syncDir(dir)
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// verified is one object read and checked by a rebuild worker.
type verified struct {
	kind ObjectKind
	id   cid.Cid
	size int
	m    *Manifest
	enc  []byte
	err  error // the object is corrupt (ErrCorrupt) or unreadable
}

// rebuildFrom fills the empty index db from the objects of src: it works on
// the listing alone, so that any backend can reuse it.
func rebuildFrom(ctx context.Context, src objectSource, db *bolt.DB, log *slog.Logger) (RebuildReport, error) {
	var rep RebuildReport
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := initIndex(tx)
		return err
	}); err != nil {
		return rep, err
	}
	jobs := make(chan verified, rebuildWorkers)
	results := make(chan verified, rebuildWorkers)
	pins := map[string]bool{}
	var listErr error
	go func() {
		defer close(jobs)
		listErr = src.List(ctx, func(kind ObjectKind, id cid.Cid) error {
			rep.Objects++
			if kind == ObjectPin {
				pins[id.KeyString()] = true
				return nil
			}
			select {
			case jobs <- verified{kind: kind, id: id}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var wg sync.WaitGroup
	for range rebuildWorkers {
		wg.Go(func() {
			for j := range jobs {
				results <- verifyObject(ctx, src, j)
			}
		})
	}
	go func() { wg.Wait(); close(results) }()

	var c counters
	var batch []verified
	flush := func() error {
		err := db.Update(func(tx *bolt.Tx) error {
			for _, v := range batch {
				if v.kind == ObjectChunk {
					if err := addChunk(tx, &c, v.id.Bytes(), v.size); err != nil {
						return err
					}
					continue
				}
				if err := recordManifest(tx, &c, v.id, v.m, v.enc, 0); err != nil {
					return err
				}
			}
			return nil
		})
		batch = batch[:0]
		return err
	}
	var err error
	for v := range results {
		if err != nil {
			continue // drain
		}
		switch {
		case errors.Is(v.err, ErrCorrupt) || errors.Is(v.err, ErrBadManifest):
			rep.Corrupt = append(rep.Corrupt, v.id)
			log.Warn("corrupt object quarantined", "kind", v.kind, "cid", v.id, "err", v.err)
			if qerr := src.Quarantine(ctx, v.kind, v.id); qerr != nil {
				err = fmt.Errorf("quarantining %s %s: %w", v.kind, v.id, qerr)
				cancel()
			}
		case errors.Is(v.err, fs.ErrNotExist): // removed since listed
		case v.err != nil:
			err = fmt.Errorf("reading %s %s: %w", v.kind, v.id, v.err)
			cancel()
		default:
			batch = append(batch, v)
			if len(batch) >= rebuildBatch {
				if err = flush(); err != nil {
					cancel()
				}
			}
		}
	}
	if err == nil && listErr != nil {
		err = fmt.Errorf("listing objects: %w", listErr)
	}
	if err == nil {
		err = flush()
	}
	if err != nil {
		return rep, err
	}
	quarantined, err := src.Quarantined(ctx)
	if err != nil {
		return rep, fmt.Errorf("counting quarantined objects: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return finishRebuild(tx, &c, quarantined, pins, &rep)
	})
	return rep, err
}

// verifyObject reads one object and checks it against its CID; a manifest
// is decoded too.
func verifyObject(ctx context.Context, src objectSource, v verified) verified {
	limit := int64(MaxChunkSize)
	if v.kind == ObjectManifest {
		limit = MaxManifestSize
	}
	data, err := src.Read(ctx, v.kind, v.id, limit)
	if err != nil {
		v.err = err
		return v
	}
	if v.kind == ObjectChunk {
		v.size = len(data)
		v.err = VerifyChunk(v.id, data)
		if v.err == nil && len(data) == 0 {
			v.err = fmt.Errorf("empty chunk: %w", ErrCorrupt)
		}
		return v
	}
	if !ManifestCID(data).Equals(v.id) {
		v.err = fmt.Errorf("manifest %s: %w", v.id, ErrCorrupt)
		return v
	}
	v.m, v.err = DecodeManifest(data)
	v.enc = data
	return v
}

// finishRebuild sets the pinned flags, finds the incomplete manifests and
// writes the counters.
func finishRebuild(tx *bolt.Tx, c *counters, quarantined int64, pins map[string]bool, rep *RebuildReport) error {
	b := tx.Bucket(bucketManifests)
	rep.Incomplete, rep.Whole, rep.Pinned = nil, 0, 0
	var pinned [][]byte
	err := b.ForEach(func(k, v []byte) error {
		if pins[string(k)] {
			pinned = append(pinned, append([]byte(nil), k...))
		}
		m, err := DecodeManifest(v[1:])
		if err != nil {
			return fmt.Errorf("manifest %x: %w", k, err)
		}
		for _, ch := range m.Chunks {
			if _, ok := chunkSize(tx, ch.CID.Bytes()); !ok {
				id, _ := cid.Cast(k)
				rep.Incomplete = append(rep.Incomplete, id)
				return nil
			}
		}
		rep.Whole++
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range pinned {
		v := b.Get(k)
		if err := b.Put(k, append([]byte{v[0] | flagPinned}, v[1:]...)); err != nil {
			return err
		}
	}
	rep.Pinned = len(pinned)
	rep.Chunks, rep.Manifests = int(c.chunks), int(c.manifests)
	c.corrupt = quarantined
	return writeCounters(tx, *c)
}
