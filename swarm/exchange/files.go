package exchange

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// This file serves contents straight from files outside the store: a
// client member's put (docs/STORE.md "What a client member keeps",
// docs/EXCHANGE.md "Serving"). Each chunk is read at its offset and
// verified against its CID when served; the first chunk that no longer
// matches, or a file whose size, modification time or link count changed,
// fails the content (FileContent.Failed) and it is no longer served.

// ErrFileChanged is wrapped by FileContent.Err when the file changed or
// disappeared while it was being served.
var ErrFileChanged = errors.New("file changed or disappeared while being put")

// FileContent is a content served from a file, registered by ServeFile.
type FileContent struct {
	x    *Exchange
	root cid.Cid
	man  *chunk.Manifest
	f    *os.File
	name string
	size int64
	mod  time.Time

	failed chan struct{}
	once   sync.Once
	err    error // set before failed is closed
}

// fileContents is the registry of the contents served from files.
type fileContents struct {
	mu     sync.RWMutex
	byRoot map[string]*FileContent
	chunks map[string][]fileChunk // chunk key -> where it sits
}

// fileChunk is one chunk of a registered file.
type fileChunk struct {
	fc     *FileContent
	offset int64
	length uint32
}

// ServeFile serves the content root, whose manifest is m (recorded in the
// store, its chunks absent), from f until Close: HaveRequests answer every
// chunk held and BlockRequests are answered from f. The file's size and
// modification time are taken now; f stays owned by the caller.
func (x *Exchange) ServeFile(root cid.Cid, m *chunk.Manifest, f *os.File) (*FileContent, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("serving %s from %s: %w", root, f.Name(), err)
	}
	if fi.Size() != m.Size {
		return nil, fmt.Errorf("serving %s from %s: %d bytes, the manifest says %d: %w", root, f.Name(), fi.Size(), m.Size, ErrFileChanged)
	}
	fc := &FileContent{x: x, root: root, man: m, f: f, name: f.Name(), size: fi.Size(), mod: fi.ModTime(), failed: make(chan struct{})}
	r := &x.files
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byRoot == nil {
		r.byRoot, r.chunks = map[string]*FileContent{}, map[string][]fileChunk{}
	}
	if _, dup := r.byRoot[root.KeyString()]; dup {
		return nil, fmt.Errorf("serving %s from %s: already served from a file", root, f.Name())
	}
	r.byRoot[root.KeyString()] = fc
	seen := map[string]bool{}
	for _, c := range m.Chunks {
		k := c.CID.KeyString()
		if !seen[k] {
			seen[k] = true
			r.chunks[k] = append(r.chunks[k], fileChunk{fc: fc, offset: c.Offset, length: c.Length})
		}
	}
	return fc, nil
}

// Close stops serving the content from its file. It does not close the file.
func (fc *FileContent) Close() {
	r := &fc.x.files
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byRoot[fc.root.KeyString()] != fc {
		return
	}
	delete(r.byRoot, fc.root.KeyString())
	for _, c := range fc.man.Chunks {
		k := c.CID.KeyString()
		list := r.chunks[k][:0]
		for _, e := range r.chunks[k] {
			if e.fc != fc {
				list = append(list, e)
			}
		}
		if len(list) == 0 {
			delete(r.chunks, k)
		} else {
			r.chunks[k] = list
		}
	}
}

// Failed is closed when the file was found changed or gone; Err says how.
func (fc *FileContent) Failed() <-chan struct{} { return fc.failed }

// Err returns why the content failed (wrapping ErrFileChanged), or nil.
func (fc *FileContent) Err() error {
	select {
	case <-fc.failed:
		return fc.err
	default:
		return nil
	}
}

func (fc *FileContent) fail(err error) {
	fc.once.Do(func() {
		fc.err = err
		close(fc.failed)
		fc.x.log.Warn("content no longer served from its file", "root", fc.root, "file", fc.name, "err", err)
	})
}

// check fails fc when its file's size, modification time or link count
// (0: removed) is no longer the one taken by ServeFile.
func (fc *FileContent) check() error {
	fi, err := fc.f.Stat()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFileChanged, err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink == 0 {
		return fmt.Errorf("the file was removed: %w", ErrFileChanged)
	}
	if fi.Size() != fc.size || !fi.ModTime().Equal(fc.mod) {
		return fmt.Errorf("the file is now %d bytes modified %s, was %d bytes modified %s: %w",
			fi.Size(), fi.ModTime().UTC().Format(time.RFC3339Nano), fc.size, fc.mod.UTC().Format(time.RFC3339Nano), ErrFileChanged)
	}
	return nil
}

// servedFromFile reports whether root is served from a file that has not failed.
func (x *Exchange) servedFromFile(root cid.Cid) bool {
	x.files.mu.RLock()
	fc := x.files.byRoot[root.KeyString()]
	x.files.mu.RUnlock()
	return fc != nil && fc.Err() == nil
}

// missing is the store's Missing, but nothing is missing of a content
// served from a file.
func (x *Exchange) missing(ctx context.Context, root cid.Cid) ([]chunk.ChunkRef, error) {
	if x.servedFromFile(root) {
		return nil, nil
	}
	return x.store.Missing(ctx, root)
}

// fileChunk reads chunk id from a file that serves it into buf (grown as
// needed) and verifies it. ok is false when no file serves it. A chunk that
// no longer matches fails its content and is answered ErrNotFound.
func (x *Exchange) fileChunk(id cid.Cid, buf []byte) (data []byte, ok bool, err error) {
	x.files.mu.RLock()
	var e fileChunk
	for _, c := range x.files.chunks[id.KeyString()] {
		if c.fc.Err() == nil {
			e, ok = c, true
			break
		}
	}
	x.files.mu.RUnlock()
	if !ok {
		return nil, false, nil
	}
	if cap(buf) < int(e.length) {
		buf = make([]byte, e.length)
	}
	data = buf[:e.length]
	err = e.fc.check()
	if err == nil {
		var n int
		n, err = e.fc.f.ReadAt(data, e.offset)
		if err != nil && n == len(data) {
			err = nil // io.EOF at the very end
		}
		if err != nil {
			err = fmt.Errorf("reading at %d: %w: %w", e.offset, ErrFileChanged, err)
		}
	}
	if err == nil {
		if verr := chunk.VerifyChunk(id, data); verr != nil {
			err = fmt.Errorf("the chunk at offset %d no longer matches: %w", e.offset, ErrFileChanged)
		}
	}
	if err != nil {
		e.fc.fail(err)
		return nil, true, fmt.Errorf("chunk %s: %w", id, chunk.ErrNotFound)
	}
	return data, true, nil
}
