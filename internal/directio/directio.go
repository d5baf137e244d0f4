// Package directio writes files around the page cache (O_DIRECT on Linux).
//
// On the project's machines a buffered write costs 0.26–0.32 s of kernel
// CPU per GiB (page allocation and copying into the page cache), and
// 1.9–3.0 s on a freshly booted one, and the fsync after it waits for those
// pages; a direct write of aligned blocks costs about 0.13 s of CPU per GiB
// in both states (docs/PERFORMANCE.md "Writes around the page cache"). Direct
// I/O needs offsets, lengths and memory aligned to the device's block;
// Writer takes care of it for a file written in pieces at any offsets, as
// a fetch writes chunks into its output.
//
// A filesystem that refuses O_DIRECT gets ordinary writes: Open
// falls back, and the caller sees no difference but the speed.
package directio

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"unsafe"
)

// Block is the alignment of every direct write: offsets, lengths and
// memory. 4096 covers every logical block size Linux filesystems use.
const Block = 4096

// aligned returns a zeroed buffer of n bytes whose first byte is aligned to
// Block.
func aligned(n int) []byte {
	b := make([]byte, n+Block)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (Block - 1))
	if off != 0 {
		off = Block - off
	}
	return b[off : off+n : off+n]
}

// Writer is an io.WriterAt over a file: the whole aligned blocks of each
// write go to the disk directly; the pieces of blocks a write covers only
// in part are kept until the writes that complete them arrive, and the
// blocks still partial at Finish (the file's last) are written through
// the page cache. Each byte of the file must be written at most once
// between Open and Finish (a fetch writes each chunk at its offsets once);
// writes are serialised.
type Writer struct {
	plain  *os.File // the file, opened as the caller gave it
	direct *os.File // the same file opened with O_DIRECT; nil: plain only

	mu      sync.Mutex
	stage   []byte // aligned staging buffer of the direct writes
	partial map[int64]*block
	err     error
}

// block is a block written in part: its bytes so far and which of them.
type block struct {
	data   []byte // Block bytes, aligned
	filled [Block / 64]uint64
	n      int // bits set in filled
}

// Open returns a Writer over f (opened for writing; Writer never closes
// it). It opens f's path a second time with O_DIRECT; when the filesystem
// refuses, every write goes through f.
func Open(f *os.File) *Writer {
	w := &Writer{plain: f, partial: map[int64]*block{}}
	if d, err := openDirectFn(f.Name()); err == nil {
		w.direct = d
	}
	return w
}

// Direct reports whether the blocks bypass the page cache.
func (w *Writer) Direct() bool { return w.direct != nil }

// WriteAt writes p at off.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("writing at %d: negative offset", off)
	}
	if w.direct == nil {
		return w.plain.WriteAt(p, off)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if err := w.writeAt(p, off); err != nil {
		w.err = err
		return 0, err
	}
	return len(p), nil
}

func (w *Writer) writeAt(p []byte, off int64) error {
	end := off + int64(len(p))
	// The whole blocks inside [off, end), written directly.
	a := (off + Block - 1) / Block * Block
	b := end / Block * Block
	if a < b {
		if w.stage == nil {
			w.stage = stages.Get().([]byte)
		}
		// Through the staging buffer, stageSize bytes at a time.
		for at := a; at < b; {
			n := int(min(b-at, stageSize))
			s := w.stage[:n]
			copy(s, p[at-off:])
			if _, err := w.direct.WriteAt(s, at); err != nil {
				return fmt.Errorf("writing %d bytes at %d: %w", n, at, err)
			}
			at += int64(n)
		}
	} else {
		a, b = end, end // no whole block: all of p is in partial blocks
	}
	// The pieces before a and after b.
	for _, r := range [][2]int64{{off, min(a, end)}, {max(b, off), end}} {
		for lo := r[0]; lo < r[1]; {
			bi := lo / Block
			hi := min(r[1], (bi+1)*Block)
			if err := w.addPartial(bi, p[lo-off:hi-off], int(lo-bi*Block)); err != nil {
				return err
			}
			lo = hi
		}
	}
	return nil
}

// addPartial copies piece into block bi at offset at, and writes the block
// once every byte of it is there.
func (w *Writer) addPartial(bi int64, piece []byte, at int) error {
	bl := w.partial[bi]
	if bl == nil {
		bl = &block{data: aligned(Block)}
		w.partial[bi] = bl
	}
	copy(bl.data[at:], piece)
	for i := at; i < at+len(piece); i++ {
		word, bit := i/64, uint64(1)<<(i%64)
		if bl.filled[word]&bit == 0 {
			bl.filled[word] |= bit
			bl.n++
		}
	}
	if bl.n < Block {
		return nil
	}
	delete(w.partial, bi)
	if _, err := w.direct.WriteAt(bl.data, bi*Block); err != nil {
		return fmt.Errorf("writing block at %d: %w", bi*Block, err)
	}
	return nil
}

// Finish writes the blocks still partial through the page cache (only
// the bytes written to them) and closes the direct descriptor. The caller
// then sets the file's size, syncs and closes it as before.
func (w *Writer) Finish() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.direct == nil {
		return nil
	}
	err := w.err
	for bi, bl := range w.partial {
		if err != nil {
			break
		}
		// Runs of filled bytes; a well-formed file has one, from the
		// block's start to the end of the content.
		for i := 0; i < Block; {
			if !bl.has(i) {
				i++
				continue
			}
			j := i
			for j < Block && bl.has(j) {
				j++
			}
			if _, werr := w.plain.WriteAt(bl.data[i:j], bi*Block+int64(i)); werr != nil {
				err = fmt.Errorf("writing at %d: %w", bi*Block+int64(i), werr)
				break
			}
			i = j
		}
	}
	w.partial = nil
	if w.stage != nil {
		stages.Put(w.stage)
		w.stage = nil
	}
	if cerr := w.direct.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing the direct descriptor: %w", cerr)
	}
	w.direct = nil
	return err
}

// stages keeps staging buffers between Writers (a store writes one file
// per chunk): each aligned, of stageSize bytes, so that a Writer holds at
// most stageSize bytes whatever it writes.
var stages = sync.Pool{New: func() any { return aligned(stageSize) }}

// stageSize is the most one direct write sends.
const stageSize = 1 << 20

func (bl *block) has(i int) bool { return bl.filled[i/64]&(1<<(i%64)) != 0 }

// ErrUnsupported is returned by openDirect where O_DIRECT does not exist.
var ErrUnsupported = errors.New("direct I/O is not supported here")

// openDirectFn is openDirect; the tests replace it to see the fallback.
var openDirectFn = openDirect
