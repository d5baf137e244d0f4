package boltpages_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/internal/boltpages"
	bolt "go.etcd.io/bbolt"
)

// filled returns an open database of ~16 MB whose every page was just read
// through the mapping.
func filled(t *testing.T) (*bolt.DB, int64) {
	t.Helper()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc/self/status")
	}
	path := filepath.Join(t.TempDir(), "index.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for i := range 16 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			for j := range 1000 {
				if err := b.Put(fmt.Appendf(nil, "%08d", (i*1000+j)*7919%1000003), bytes.Repeat([]byte{1}, 900)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	read(t, db)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return db, fi.Size()
}

// read walks every record of db.
func read(t *testing.T, db *bolt.DB) {
	t.Helper()
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("b")).ForEach(func(k, v []byte) error { return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The file's pages read through bbolt's mapping do not stay in the
// process's RSS: Trim gives them back, and the data reads the same after.
func TestTrimGivesBackMappedPages(t *testing.T) {
	db, size := filled(t)
	before := rssFile(t)
	boltpages.New(db, time.Hour).Trim()
	after := rssFile(t)
	if before-after < size/2 {
		t.Fatalf("RssFile %d kB before the trim, %d kB after, file %d kB: the mapped pages stayed", before>>10, after>>10, size>>10)
	}
	var n int
	err := db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("b")).Stats().KeyN; return nil })
	if err != nil || n != 16000 {
		t.Fatalf("%d records after the trim (%v), want 16000", n, err)
	}
}

// Touch trims within one period of the last read, not at once when a
// trim ran less than a period before, and not after Stop.
func TestTouchTrimsAtTheEndOfThePeriod(t *testing.T) {
	db, size := filled(t)
	tr := boltpages.New(db, 300*time.Millisecond)
	tr.Trim()
	floor := rssFile(t) // what stays resident besides the file's pages
	read(t, db)
	resident := func() bool { return rssFile(t)-floor > size/2 }
	if !resident() {
		t.Fatal("the pages just read are not resident: the test cannot tell a trim")
	}
	tr.Touch() // the last trim by Touch is long ago: trims at once
	if !waitTrim(resident, 2*time.Second) {
		t.Fatal("Touch did not trim within 2 s")
	}
	read(t, db)
	tr.Touch() // within the period of that trim: trims at its end
	if !resident() {
		t.Fatal("Touch trimmed again within the period")
	}
	if !waitTrim(resident, 2*time.Second) {
		t.Fatal("the trailing trim did not run within 2 s")
	}
	read(t, db)
	tr.Stop()
	tr.Touch()
	time.Sleep(700 * time.Millisecond)
	if !resident() {
		t.Fatal("a Touch after Stop trimmed")
	}
}

// waitTrim waits up to d for resident to turn false.
func waitTrim(resident func() bool, d time.Duration) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !resident() {
			return true
		}
	}
	return false
}

// rssFile returns the process's resident file-backed bytes.
func rssFile(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "RssFile:" {
			var kb int64
			if _, err := fmt.Sscan(f[1], &kb); err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Skip("no RssFile in /proc/self/status")
	return 0
}
