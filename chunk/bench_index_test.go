package chunk

import (
	"encoding/binary"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bigIndex writes the index of a store of n contents of 4 chunks each
// (no chunk files: only the index is measured) and returns its folder.
func bigIndex(b *testing.B, n int) string {
	b.Helper()
	dir := b.TempDir()
	if err := prepareDir(dir, slog.New(slog.DiscardHandler), true); err != nil {
		b.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, indexName), 0o600, &bolt.Options{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { _, err := initIndex(tx); return err }); err != nil {
		b.Fatal(err)
	}
	const perTx = 5000
	for start := 0; start < n; start += perTx {
		err := db.Update(func(tx *bolt.Tx) error {
			c := readCounters(tx)
			for i := start; i < start+perTx && i < n; i++ {
				m := &Manifest{Version: ManifestVersion, Layout: Layout{Kind: LayoutReplicated}}
				for j := range 4 {
					var seed [8]byte
					binary.BigEndian.PutUint64(seed[:], uint64(i*4+j))
					id := SumChunk(seed[:])
					m.Chunks = append(m.Chunks, ChunkRef{CID: id, Offset: m.Size, Length: 1 << 20})
					m.Size += 1 << 20
					if err := addChunk(tx, &c, id.Bytes(), 1<<20); err != nil {
						return err
					}
				}
				enc, err := m.Encode()
				if err != nil {
					return err
				}
				if err := recordManifest(tx, &c, ManifestCID(enc), m, enc, flagPinned); err != nil {
					return err
				}
			}
			return writeCounters(tx, c)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// BenchmarkIndexOpen measures what Open's check of the index costs on an
// index of 100,000 contents (400,000 chunks): the file check alone, and
// Open with the check against bbolt's own open as Open did before it (the
// baseline). Run: go test -run XXX -bench IndexOpen -benchtime 20x ./chunk/
func BenchmarkIndexOpen(b *testing.B) {
	start := time.Now()
	dir := bigIndex(b, 100_000)
	path := filepath.Join(dir, indexName)
	st, _ := os.Stat(path)
	b.Logf("index of 100000 contents: %d MiB, built in %v", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	b.Run("check", func(b *testing.B) {
		for b.Loop() {
			if err := checkIndexFile(path); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-bolt-open", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 500 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			db.Update(func(tx *bolt.Tx) error { _, err := initIndex(tx); readCounters(tx); return err })
			db.Close()
		}
	})
	b.Run("checked-open", func(b *testing.B) {
		for b.Loop() {
			s := &Store{dir: dir, holds: map[string]int{}}
			if err := s.openIndex(); err != nil {
				b.Fatal(err)
			}
			s.db.Close()
		}
	})
}
