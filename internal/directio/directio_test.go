package directio

import (
	"bytes"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// pieces cuts size bytes into pieces of random lengths (some under a
// block, some over several, a few over the staging buffer), as a fetch's
// chunks are cut.
func pieces(r *rand.Rand, size int) [][2]int {
	var out [][2]int
	for off := 0; off < size; {
		n := 1 + r.IntN(3*Block)
		switch r.IntN(8) {
		case 0, 1:
			n = 1 + r.IntN(Block/2)
		case 2:
			n = 1 + r.IntN(3*stageSize)
		}
		n = min(n, size-off)
		out = append(out, [2]int{off, off + n})
		off += n
	}
	return out
}

// writeShuffled writes want into a new file in dir through a Writer, its
// pieces in a random order, and returns what the file holds after.
func writeShuffled(t *testing.T, dir string, want []byte, seed uint64) ([]byte, bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	ps := pieces(r, len(want))
	r.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	f, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := Open(f)
	direct := w.Direct()
	for _, p := range ps {
		// A fresh, unaligned copy: the caller's memory is any memory.
		buf := append([]byte{0}, want[p[0]:p[1]]...)[1:]
		if n, err := w.WriteAt(buf, int64(p[0])); err != nil || n != len(buf) {
			t.Fatalf("WriteAt(%d bytes at %d) = %d, %v", len(buf), p[0], n, err)
		}
	}
	if err := w.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(len(want))); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return got, direct
}

// TestWriterOutOfOrder: pieces of every size, written in any order, give
// the file byte for byte, whatever the file's size modulo the block.
func TestWriterOutOfOrder(t *testing.T) {
	dir := t.TempDir()
	sawDirect := false
	for i, size := range []int{0, 1, Block - 1, Block, Block + 1, 3*Block + 17, 1 << 20, 1<<20 + 4095, 5<<20 + 123, 9<<20 + 4097} {
		want := make([]byte, size)
		r := rand.New(rand.NewPCG(uint64(i), 2))
		for j := range want {
			want[j] = byte(r.Uint32())
		}
		got, direct := writeShuffled(t, dir, want, uint64(i))
		sawDirect = sawDirect || direct
		if !bytes.Equal(got, want) {
			t.Fatalf("size %d: the file differs from what was written (%d bytes read back)", size, len(got))
		}
	}
	if !sawDirect {
		t.Fatalf("%s refuses O_DIRECT: the direct path was not tested", dir)
	}
}

// TestWriterFallsBack: where O_DIRECT is refused, the writes go through
// the page cache and the file is still right.
func TestWriterFallsBack(t *testing.T) {
	openDirectFn = func(string) (*os.File, error) { return nil, ErrUnsupported }
	defer func() { openDirectFn = openDirect }()
	want := bytes.Repeat([]byte("plain!"), 100_000)
	got, direct := writeShuffled(t, t.TempDir(), want, 7)
	if direct {
		t.Fatal("the writer says direct although O_DIRECT was refused")
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the fallback's file differs from what was written")
	}
}
