package dhtstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	dstest "github.com/ipfs/go-datastore/test"

	"github.com/annex-swarm/annex-swarm/swarm/membership/dhtstore"
)

func open(t *testing.T, path string, log *slog.Logger) *dhtstore.DB {
	t.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	db, err := dhtstore.Open(path, log)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func swarm(t *testing.T, db *dhtstore.DB, id string) *dhtstore.Datastore {
	t.Helper()
	s, err := db.Swarm(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The bbolt datastore passes go-datastore's own suite, batches included.
func TestSuite(t *testing.T) {
	db := open(t, filepath.Join(t.TempDir(), "dht.db"), nil)
	defer db.Close()
	dstest.SubtestAll(t, swarm(t, db, "swarm-a"))
}

// A prefix query streams more entries than one page, in key order, and
// selects only strict children of the prefix.
func TestPrefixQueryPages(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "dht.db"), nil)
	defer db.Close()
	s := swarm(t, db, "swarm-a")
	b, _ := s.Batch(ctx)
	const n = 1000
	for i := range n {
		_ = b.Put(ctx, ds.NewKey(fmt.Sprintf("/providers/K%04d/P", i)), []byte{byte(i)})
	}
	_ = b.Put(ctx, ds.NewKey("/providersX/no"), []byte("x"))
	_ = b.Put(ctx, ds.NewKey("/providers"), []byte("x"))
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := s.Query(ctx, dsq.Query{Prefix: "/providers/"})
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	last := ""
	for r := range res.Next() {
		if r.Error != nil {
			t.Fatal(r.Error)
		}
		if !strings.HasPrefix(r.Key, "/providers/") || r.Key <= last {
			t.Fatalf("entry %q after %q", r.Key, last)
		}
		// Deleting while walking (kad-dht's GC does) must not deadlock.
		if err := s.Delete(ctx, ds.RawKey(r.Key)); err != nil {
			t.Fatal(err)
		}
		last = r.Key
		got++
	}
	if got != n {
		t.Fatalf("%d entries, want %d", got, n)
	}
	if c, _ := db.Count("swarm-a"); c != 2 {
		t.Fatalf("%d records left, want the 2 outside the prefix", c)
	}
}

// Records survive a close and reopen; another swarm's bucket does not see
// them and joining it drops them.
func TestReopenAndSwarms(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dht.db")
	db := open(t, path, nil)
	a := swarm(t, db, "swarm-a")
	key := ds.NewKey("/providers/K/P")
	if err := a.Put(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db = open(t, path, nil)
	a = swarm(t, db, "swarm-a")
	if v, err := a.Get(ctx, key); err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	b := swarm(t, db, "swarm-b")
	if has, err := b.Has(ctx, key); err != nil || has {
		t.Fatalf("swarm-b sees swarm-a's key: %v, %v", has, err)
	}
	if n, _ := db.Count("swarm-a"); n != 0 {
		t.Fatalf("swarm-a still holds %d records after swarm-b was joined", n)
	}
	if err := a.Put(ctx, key, []byte("v")); err == nil {
		t.Fatal("a dropped swarm's datastore accepted a write")
	}
	// Leaving drops the current swarm's records too.
	if err := b.Put(ctx, key, []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Drop(); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Count("swarm-b"); n != 0 {
		t.Fatalf("swarm-b holds %d records after Drop", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// A file that is not a bbolt file is replaced, with one warning line.
func TestGarbageFileReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dht.db")
	if err := os.WriteFile(path, bytes.Repeat([]byte("not a database "), 2000), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	db := open(t, path, slog.New(slog.NewTextHandler(&logs, nil)))
	s := swarm(t, db, "swarm-a")
	if err := s.Put(context.Background(), ds.NewKey("/k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want 1:\n%s", n, logs.String())
	}
}

// A file left open by a killed daemon of this boot is kept; one left open
// in an earlier boot (the machine stopped, NoSync writes may be torn) is
// replaced.
func TestOpenAcrossBoots(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dht.db")
	db := open(t, path, nil)
	a := swarm(t, db, "swarm-a")
	if err := a.Put(ctx, ds.NewKey("/k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// Simulate kill -9: copy the file while it is open, as the page cache
	// holds it.
	killed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, killed, 0o600); err != nil {
		t.Fatal(err)
	}
	db = open(t, path, nil)
	if n, _ := db.Count("swarm-a"); n != 1 {
		t.Fatalf("%d records after a kill, want 1", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/sys/kernel/random/boot_id"); err != nil {
		t.Skip("no boot ID on this system")
	}
	// The same file marked open in another boot.
	if err := os.WriteFile(path, bytes.Replace(killed, bootID(t), []byte("00000000-0000-0000-0000-000000000000"), -1), 0o600); err != nil {
		t.Fatal(err)
	}
	db = open(t, path, nil)
	defer db.Close()
	if n, _ := db.Count("swarm-a"); n != 0 {
		t.Fatalf("%d records kept from a file open when the machine stopped", n)
	}
}

func bootID(t *testing.T) []byte {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

// A batch commits in one transaction and is visible only after Commit.
func TestBatchVisibleAfterCommit(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "dht.db"), nil)
	defer db.Close()
	s := swarm(t, db, "swarm-a")
	b, _ := s.Batch(ctx)
	for i := range 300 {
		_ = b.Put(ctx, ds.NewKey(fmt.Sprintf("/providers/%d", i)), []byte("t"))
	}
	if n, _ := db.Count("swarm-a"); n != 0 {
		t.Fatalf("%d records before Commit", n)
	}
	start := time.Now()
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if n, _ := db.Count("swarm-a"); n != 300 {
		t.Fatalf("%d records after Commit, want 300 (took %v)", n, time.Since(start))
	}
}

// Records written do not stay on the Go heap: 30,000 provider-sized
// records would take ~6.8 MB in kad-dht's in-memory map (~228 bytes each;
// ds.NewMapDatastore in place of the file fails this test).
func TestRecordsNotOnHeap(t *testing.T) {
	ctx := context.Background()
	db := open(t, filepath.Join(t.TempDir(), "dht.db"), nil)
	defer db.Close()
	s := swarm(t, db, "swarm-a")
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const n = 30000
	b, _ := s.Batch(ctx)
	for i := range n {
		k := fmt.Sprintf("/providers/CIQ%052d/PEER%057d", (i*7919)%n, i%3)
		_ = b.Put(ctx, ds.NewKey(k), []byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01})
		if (i+1)%256 == 0 {
			if err := b.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			b, _ = s.Batch(ctx)
		}
	}
	if err := b.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 3<<20 {
		t.Fatalf("the heap grew by %d bytes for %d records", grew, n)
	}
}
