package chunk

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// freshIndex returns the bytes of a new bbolt file with the store's buckets.
func freshIndex(t testing.TB, pageSize int) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{PageSize: pageSize})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := initIndex(tx); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCheckBoltFresh(t *testing.T) {
	b := freshIndex(t, 0)
	if err := checkBolt(bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatalf("fresh index refused: %v", err)
	}
	ps := os.Getpagesize()
	// Meta 0 gone: bbolt falls back to meta 1, and so does the check.
	z := append([]byte(nil), b...)
	clear(z[:ps])
	if err := checkBolt(bytes.NewReader(z), int64(len(z))); err != nil {
		t.Fatalf("index with meta 1 only refused: %v", err)
	}
	for _, n := range []int{0, 10, ps, 2 * ps, 3*ps + 1} {
		if err := checkBolt(bytes.NewReader(b[:n]), int64(n)); err == nil {
			t.Errorf("index truncated to %d bytes accepted", n)
		}
	}
}

// FuzzCheckBolt feeds the check arbitrary files: it must never panic, and
// whatever it accepts, bbolt must open and read without a fault.
func FuzzCheckBolt(f *testing.F) {
	b := freshIndex(f, 1024) // small pages make small inputs
	f.Add(b)
	f.Add(b[:1024])
	f.Add(b[:len(b)-1024])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<20 {
			return
		}
		if checkBolt(bytes.NewReader(data), int64(len(data))) != nil {
			return
		}
		path := filepath.Join(t.TempDir(), "index.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		err := guardIndex("fuzz", func() error {
			db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			defer db.Close()
			return db.View(touchBuckets)
		})
		_ = err // an error is fine; a fault or panic escaping the guard is not
	})
}

func FuzzParseBoltMeta(f *testing.F) {
	b := freshIndex(f, 0)
	f.Add(b[:boltPageHeader+boltMetaSize])
	f.Add(b[os.Getpagesize() : os.Getpagesize()+boltPageHeader+boltMetaSize])
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := parseBoltMeta(data)
		if err == nil && (m.pageSize < boltMinPageSize || m.pageSize > boltMaxPageSize) {
			t.Fatalf("accepted page size %d", m.pageSize)
		}
	})
}
