// Package dhtstore keeps the swarm DHT's provider records in a bbolt file
// instead of kad-dht's default in-memory map (docs/EXCHANGE.md, "Discovery").
//
// The file is a cache of soft state: every provider record is announced
// again by its holder every reprovide interval and expires after its
// validity, so losing the last writes costs nothing that the next
// announcement does not restore. The file is therefore written without
// fsync (bbolt's NoSync and NoFreelistSync):
//
//   - a kill -9 of the daemon at any moment leaves a file that opens: every
//     page bbolt wrote reached the kernel's page cache before the meta page
//     that commits it, and the page cache outlives the process, so the file
//     holds the last committed transaction (bbolt's copy-on-write pages and
//     its two checksummed meta pages);
//   - an OS crash or power loss while the file is open may leave pages torn
//     or out of order. The file records the boot it was opened in and forgets
//     it on a clean Close; a file found open from another boot, a file that
//     does not open, or one that fails a quick check is removed and made
//     afresh with one warning line. Opening never refuses because of what
//     the file holds.
//
// Each swarm's records live in a bucket named by the swarm ID, so the DHT of
// one swarm never sees another's; Swarm drops every other swarm's bucket.
package dhtstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/annex-swarm/annex-swarm/internal/boltpages"

	ds "github.com/ipfs/go-datastore"
	bolt "go.etcd.io/bbolt"
)

// stateBucket holds the file's own state; swarm IDs never start with a NUL.
var stateBucket = []byte("\x00state")

// openKey in stateBucket holds the boot ID of the boot that has the file
// open; a clean Close deletes it.
var openKey = []byte("open-in-boot")

// bootIDPath names the current boot on Linux; elsewhere the boot check is
// skipped.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// ErrDropped is returned by a Datastore whose swarm's bucket was dropped (the
// swarm was left or another one joined).
var ErrDropped = errors.New("dhtstore: the swarm's records were dropped")

// trimEvery is how often, at most, the file's pages mapped into the process
// are given back (package boltpages): 300,000 records' writes touch most
// leaf pages, ~72 MB of an 84 MB file measured in a daemon's RSS.
const trimEvery = 10 * time.Second

// DB is the open record file. It is safe for concurrent use.
type DB struct {
	db    *bolt.DB
	path  string
	pages *boltpages.Trimmer // gives back the pages read through the mapping
}

// Open opens the record file at path, creating it if needed. A file that
// does not open, fails a quick check, or was left open by an earlier boot
// of the machine is removed and created afresh, with a warning on log.
// Open fails only when no file can be created at path.
func Open(path string, log *slog.Logger) (*DB, error) {
	if log == nil {
		log = slog.Default()
	}
	boot := bootID()
	db, err := openChecked(path, boot)
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("opening the DHT record file %s: another process holds it", path)
	}
	if err != nil {
		log.Warn("the DHT record file is damaged or stale; starting a fresh one (its records come back with the next announcements)", "path", path, "err", err)
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("removing the damaged DHT record file %s: %w", path, rerr)
		}
		if db, err = openChecked(path, boot); err != nil {
			return nil, fmt.Errorf("creating the DHT record file %s: %w", path, err)
		}
	}
	d := &DB{db: db, path: path, pages: boltpages.New(db, trimEvery)}
	// Opening read every page (bbolt rebuilds the free list of a file
	// kept without one): ~20 MiB of a 30,000-content swarm's records
	// stayed in a restarted daemon's RSS until the next write.
	d.pages.Touch()
	return d, nil
}

// openChecked opens path, runs the quick check and marks the file open in
// boot. A panic of bbolt on a damaged file is returned as an error.
func openChecked(path, boot string) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, fmt.Errorf("reading the file: %v", r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:        time.Second,
		NoSync:         true,
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if err != nil {
		return nil, err
	}
	if err := markOpen(db, boot); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// markOpen checks that the file was closed cleanly or left open in this
// boot (a killed daemon), walks the ends of every bucket, and records that
// the file is open in boot, synced so an OS crash finds the mark.
func markOpen(db *bolt.DB, boot string) error {
	err := db.Update(func(tx *bolt.Tx) error {
		st, err := tx.CreateBucketIfNotExists(stateBucket)
		if err != nil {
			return err
		}
		if prev := st.Get(openKey); prev != nil && boot != "" && string(prev) != boot {
			return fmt.Errorf("the file was open when the machine stopped (boot %s); its last writes may be torn", prev)
		}
		err = tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			c := b.Cursor()
			c.First()
			c.Last()
			return nil
		})
		if err != nil {
			return err
		}
		return st.Put(openKey, []byte(boot))
	})
	if err != nil {
		return err
	}
	return db.Sync()
}

// bootID returns the current boot's ID, or "" where the system has none.
func bootID() string {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// Swarm returns the datastore of swarm id's records, and drops every other
// swarm's records: a host is in one swarm at a time.
func (d *DB) Swarm(id string) (*Datastore, error) {
	name := []byte(id)
	if len(name) == 0 || bytes.HasPrefix(name, []byte{0}) {
		return nil, fmt.Errorf("dhtstore: invalid swarm ID %q", id)
	}
	err := d.db.Update(func(tx *bolt.Tx) error {
		if err := dropSwarms(tx, name); err != nil {
			return err
		}
		_, err := tx.CreateBucketIfNotExists(name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("opening the DHT records of swarm %s: %w", id, err)
	}
	return &Datastore{db: d.db, owner: d, bucket: name}, nil
}

// Drop removes every swarm's records (the swarm was left).
func (d *DB) Drop() error {
	if err := d.db.Update(func(tx *bolt.Tx) error { return dropSwarms(tx, nil) }); err != nil {
		return fmt.Errorf("dropping the DHT records: %w", err)
	}
	return nil
}

// dropSwarms deletes every swarm bucket but keep's.
func dropSwarms(tx *bolt.Tx, keep []byte) error {
	var names [][]byte
	err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
		if !bytes.Equal(name, stateBucket) && !bytes.Equal(name, keep) {
			names = append(names, bytes.Clone(name))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := tx.DeleteBucket(n); err != nil {
			return err
		}
	}
	return nil
}

// Count returns how many records swarm id holds (0 when it has none).
func (d *DB) Count(id string) (int, error) {
	n := 0
	err := d.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte(id)); b != nil {
			n = b.Stats().KeyN
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("counting the DHT records of swarm %s: %w", id, err)
	}
	return n, nil
}

// Close marks the file closed cleanly, syncs it and closes it. Close the
// DHT that uses it first.
func (d *DB) Close() error {
	d.pages.Stop()
	err := d.db.Update(func(tx *bolt.Tx) error {
		if st := tx.Bucket(stateBucket); st != nil {
			return st.Delete(openKey)
		}
		return nil
	})
	if err == nil {
		err = d.db.Sync()
	}
	if cerr := d.db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("closing the DHT record file %s: %w", d.path, err)
	}
	return nil
}

var _ ds.Batching = (*Datastore)(nil)
var _ ds.PersistentDatastore = (*Datastore)(nil)

// Datastore is one swarm's records as a go-datastore ds.Batching, for
// kad-dht's Datastore option. Its Close does nothing: the DB owns the file.
type Datastore struct {
	db     *bolt.DB
	owner  *DB
	bucket []byte
}

// Get returns the value of key, or ds.ErrNotFound.
func (s *Datastore) Get(ctx context.Context, key ds.Key) ([]byte, error) {
	var v []byte
	err := s.view(func(b *bolt.Bucket) error {
		got := b.Get(key.Bytes())
		if got == nil {
			return ds.ErrNotFound
		}
		v = bytes.Clone(got)
		return nil
	})
	return v, err
}

// Has reports whether key has a value.
func (s *Datastore) Has(ctx context.Context, key ds.Key) (bool, error) {
	_, err := s.GetSize(ctx, key)
	if errors.Is(err, ds.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// GetSize returns the size of key's value, or ds.ErrNotFound.
func (s *Datastore) GetSize(ctx context.Context, key ds.Key) (int, error) {
	n := -1
	err := s.view(func(b *bolt.Bucket) error {
		got := b.Get(key.Bytes())
		if got == nil {
			return ds.ErrNotFound
		}
		n = len(got)
		return nil
	})
	return n, err
}

// Put stores value under key in a transaction of its own.
func (s *Datastore) Put(ctx context.Context, key ds.Key, value []byte) error {
	return s.update(func(b *bolt.Bucket) error { return b.Put(key.Bytes(), value) })
}

// Delete removes key; a key that has no value is not an error.
func (s *Datastore) Delete(ctx context.Context, key ds.Key) error {
	return s.update(func(b *bolt.Bucket) error { return b.Delete(key.Bytes()) })
}

// Sync writes the file to stable storage (the records need not survive an
// OS crash, but a caller that asks gets it).
func (s *Datastore) Sync(ctx context.Context, prefix ds.Key) error {
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("syncing the DHT record file: %w", err)
	}
	return nil
}

// DiskUsage returns the size of the whole record file.
func (s *Datastore) DiskUsage(ctx context.Context) (uint64, error) {
	fi, err := os.Stat(s.db.Path())
	if err != nil {
		return 0, fmt.Errorf("measuring the DHT record file: %w", err)
	}
	return uint64(fi.Size()), nil
}

// Close does nothing; DB.Close closes the file.
func (s *Datastore) Close() error { return nil }

// Batch returns a batch whose writes Commit applies in one transaction.
func (s *Datastore) Batch(ctx context.Context) (ds.Batch, error) {
	return &batch{s: s, ops: map[string]op{}}, nil
}

// view runs f on the swarm's bucket in a read transaction.
func (s *Datastore) view(f func(*bolt.Bucket) error) error {
	defer s.owner.pages.Touch()
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return ErrDropped
		}
		return f(b)
	})
}

// update runs f on the swarm's bucket in a write transaction.
func (s *Datastore) update(f func(*bolt.Bucket) error) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(s.bucket)
		if b == nil {
			return ErrDropped
		}
		return f(b)
	})
	if err == nil {
		s.owner.pages.Touch()
	}
	return err
}

// op is one write of a batch: a put of value, or a delete.
type op struct {
	del   bool
	value []byte
}

// batch collects writes; the last write of a key wins.
type batch struct {
	s   *Datastore
	ops map[string]op
}

func (b *batch) Put(ctx context.Context, key ds.Key, value []byte) error {
	b.ops[key.String()] = op{value: bytes.Clone(value)}
	return nil
}

func (b *batch) Delete(ctx context.Context, key ds.Key) error {
	b.ops[key.String()] = op{del: true}
	return nil
}

// Commit applies the batch in one bbolt transaction.
func (b *batch) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := b.s.update(func(bk *bolt.Bucket) error {
		for k, o := range b.ops {
			var err error
			if o.del {
				err = bk.Delete([]byte(k))
			} else {
				err = bk.Put([]byte(k), o.value)
			}
			if err != nil {
				return fmt.Errorf("writing %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("committing a batch of %d DHT records: %w", len(b.ops), err)
	}
	clear(b.ops)
	return nil
}
