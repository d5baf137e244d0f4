// Package boltpages gives back the pages of a bbolt file that a process
// read through bbolt's mapping.
//
// bbolt reads its file through a read-only shared mapping. Every page read
// stays in the process's RSS (as a file page) until the kernel reclaims it,
// so a daemon that walked a large index once — at start, or in a repair
// round — carries the whole file in its RSS although its heap does not.
// A Trimmer gives those pages back (madvise MADV_DONTNEED on Linux): they
// stay in the page cache, and the next read maps them again without I/O.
package boltpages

import (
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Trimmer trims a database's mapped pages at most once every period, and
// always within one period after the last Touch. It is safe for
// concurrent use.
type Trimmer struct {
	db    *bolt.DB
	every time.Duration

	pending atomic.Bool  // a trim is scheduled
	last    atomic.Int64 // Unix nanoseconds of the last trim
	mu      sync.Mutex   // guards timer and stopped
	timer   *time.Timer
	stopped bool
}

// New returns a Trimmer for db that trims at most once every period.
func New(db *bolt.DB, every time.Duration) *Trimmer {
	return &Trimmer{db: db, every: every}
}

// Touch notes that pages of the file may have been read: a trim runs at
// the end of the current period (at once when the last trim is a period
// old). Touch costs one atomic load when a trim is already scheduled.
func (t *Trimmer) Touch() {
	if t.pending.Load() || !t.pending.CompareAndSwap(false, true) {
		return
	}
	wait := time.Duration(t.last.Load()+int64(t.every)-time.Now().UnixNano()) * time.Nanosecond
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	t.timer = time.AfterFunc(max(wait, 0), t.fire)
}

// fire runs the scheduled trim.
func (t *Trimmer) fire() {
	t.last.Store(time.Now().UnixNano())
	t.pending.Store(false)
	t.Trim()
}

// Trim gives back the file's mapped pages now, under a read transaction so
// that the mapping does not move meanwhile. Failures are harmless (the
// pages stay) and ignored; on a closed database it does nothing.
func (t *Trimmer) Trim() {
	_ = t.db.View(func(tx *bolt.Tx) error {
		return dropMapped(t.db.Info().Data, uintptr(tx.Size()))
	})
}

// Stop cancels a scheduled trim; call it before closing the database.
// Later Touches do nothing.
func (t *Trimmer) Stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.timer != nil {
		t.timer.Stop()
	}
}
