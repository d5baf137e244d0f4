package daemon

import (
	"bytes"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestPrefixHasher: ranges written out of order and from several
// goroutines hash to the digest of the whole file.
func TestPrefixHasher(t *testing.T) {
	data := make([]byte, 3<<20+123)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type piece struct{ off, end int }
	var pieces []piece
	for off := 0; off < len(data); {
		end := min(off+1+rng.IntN(200<<10), len(data))
		pieces = append(pieces, piece{off, end})
		off = end
	}
	rng.Shuffle(len(pieces), func(i, j int) { pieces[i], pieces[j] = pieces[j], pieces[i] })
	h := sha256.New()
	ph := newPrefixHasher(f, h)
	done := make(chan struct{})
	res := make(chan hashResult, 1)
	go func() {
		n, err := ph.run(done)
		res <- hashResult{n, err}
	}()
	var wg sync.WaitGroup
	work := make(chan piece)
	for range 4 {
		wg.Go(func() {
			for p := range work {
				if _, err := ph.WriteAt(data[p.off:p.end], int64(p.off)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for _, p := range pieces {
		work <- p
	}
	close(work)
	wg.Wait()
	close(done)
	r := <-res
	if r.err != nil || r.n != int64(len(data)) {
		t.Fatalf("hashed %d of %d bytes: %v", r.n, len(data), r.err)
	}
	want := sha256.Sum256(data)
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("digest differs from the file's")
	}
}
