package daemon

import (
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
)

// prefixHasher writes chunks into the output file of a direct get and
// hashes the file's bytes in order meanwhile: it records the ranges
// written and, on its own goroutine, reads back (from the page cache) and
// hashes the prefix that is complete, so that the key's digest is ready
// soon after the last chunk instead of after a second pass over the file.
type prefixHasher struct {
	f    *os.File
	h    hash.Hash
	wake chan struct{}

	mu   sync.Mutex
	ends map[int64]int64 // start -> end of each range written, not yet hashed
}

func newPrefixHasher(f *os.File, h hash.Hash) *prefixHasher {
	return &prefixHasher{f: f, h: h, wake: make(chan struct{}, 1), ends: map[int64]int64{}}
}

// WriteAt writes p at off in the file and records the range.
func (p *prefixHasher) WriteAt(b []byte, off int64) (int, error) {
	n, err := p.f.WriteAt(b, off)
	if n > 0 {
		p.mu.Lock()
		p.ends[off] = off + int64(n)
		p.mu.Unlock()
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	return n, err
}

// run hashes the complete prefix as it grows until done is closed, then
// what is left; it returns the bytes hashed, or the first read error.
func (p *prefixHasher) run(done <-chan struct{}) (int64, error) {
	var next int64
	buf := make([]byte, 1<<20)
	for {
		p.mu.Lock()
		end := next
		for {
			e, ok := p.ends[end]
			if !ok {
				break
			}
			delete(p.ends, end)
			end = e
		}
		p.mu.Unlock()
		if end > next {
			if _, err := io.CopyBuffer(p.h, io.NewSectionReader(p.f, next, end-next), buf); err != nil {
				return next, fmt.Errorf("hashing the output at %d: %w", next, err)
			}
			next = end
			continue
		}
		select {
		case <-p.wake:
		case <-done:
			select {
			case <-p.wake: // a last write raced with done
				continue
			default:
			}
			p.mu.Lock()
			left := len(p.ends)
			p.mu.Unlock()
			if left > 0 {
				continue
			}
			return next, nil
		}
	}
}
