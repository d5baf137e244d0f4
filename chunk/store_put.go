package chunk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	cid "github.com/ipfs/go-cid"
	bolt "go.etcd.io/bbolt"
)

// This file implements Put, the pipelined write of docs/STORE.md#writes.

const (
	// putBuffers is how many chunk copies may exist between the chunker and
	// the writer: one in each of the three stages and one queued before
	// each of the last two, plus one spare. It bounds Put's memory to
	// putBuffers × Max on top of the chunker's buffer.
	putBuffers = 6
	// syncWorkers is how many chunk files (or folders) are fsynced at once.
	// Concurrent fsyncs share journal commits, so a few in flight cost
	// little more than one.
	syncWorkers = 4
	// syncQueue bounds the chunk files written but not yet handed to a sync
	// worker: open descriptors and dirty pages waiting for the disk.
	syncQueue = 16
)

// sizeReader fails once more than n bytes come out of r.
type sizeReader struct {
	r io.Reader
	n int64
}

var errTooLong = errors.New("content longer than its declared size")

func (r *sizeReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n -= int64(n)
	if r.n < 0 {
		return n, errTooLong
	}
	return n, err
}

// Put stores the content of r, which must be exactly size bytes, under the
// git-annex key (which may be empty): it chunks the stream, writes the chunks
// not yet held, and records the manifest as pinned. It returns the content's
// CID and manifest. It fails with ErrNoSpace, before writing anything, if
// size does not fit under the limit. On any error nothing new is referenced.
//
// Chunking runs in the calling goroutine, hashing and writing in two more
// and fsyncs in a few more, so that the disk works while the next chunks are
// cut; see docs/STORE.md#writes for why this is safe.
func (s *Store) Put(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, *Manifest, error) {
	if size < 0 {
		return cid.Undef, nil, fmt.Errorf("storing content: negative size %d", size)
	}
	release, err := s.reserve(size)
	if err != nil {
		return cid.Undef, nil, err
	}
	defer release()
	p := &put{s: s, seen: map[string]bool{}, dirs: map[string]bool{}}
	m, err := p.run(ctx, &sizeReader{r: r, n: size}, key)
	if err == nil && m.Size != size {
		err = fmt.Errorf("content is %d bytes, declared %d", m.Size, size)
	}
	var enc []byte
	if err == nil {
		enc, err = m.Encode()
	}
	root := cid.Undef
	if err == nil {
		root = ManifestCID(enc)
		if err = p.index(root, m, enc); err != nil {
			err = fmt.Errorf("indexing %s: %w", root, err)
		}
	}
	s.unhold(p.held...)
	if err != nil {
		s.unlinkUnused(p.written)
		return cid.Undef, nil, fmt.Errorf("storing content: %w", err)
	}
	s.log.Debug("stored", "cid", root, "size", size, "chunks", len(m.Chunks), "new", len(p.written))
	return root, m, nil
}

// put is the state of one Put. seen and held belong to the writer goroutine
// until run returns; written and dirs are filled by the sync workers under
// mu; err is the first failure of any stage.
type put struct {
	s    *Store
	seen map[string]bool
	held []string

	mu      sync.Mutex
	written []cid.Cid // renamed into place, not yet indexed
	dirs    map[string]bool
	err     error
	cancel  context.CancelFunc
}

// queuedChunk is a chunk on its way from the chunker to the writer; buf is a
// copy of its bytes, returned to the free list once written.
type queuedChunk struct {
	ref ChunkRef
	buf []byte
}

// pendingFile is a chunk file written to its temporary name, waiting for
// its fsync and rename; with a Backend, a copy of the chunk waiting for its
// upload (f is nil).
type pendingFile struct {
	id   cid.Cid
	f    *os.File
	data []byte
}

// fail records the first error and stops every stage.
func (p *put) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.cancel()
}

// run chunks r in the calling goroutine and hands each chunk to the hasher,
// which builds the manifest and hands the chunk to the writer, which hands
// the file to the sync workers. Three stages keep two cores busy: reading
// and chunking, hashing, and the write syscalls cost about the same. run
// returns once every stage has finished, with every new chunk file fsynced
// and renamed into place, or with the first error and no temporary file
// left behind.
func (p *put) run(ctx context.Context, r io.Reader, key string) (*Manifest, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("building manifest: %w", err)
	}
	ctx, p.cancel = context.WithCancel(ctx)
	defer p.cancel()
	free := make(chan []byte, putBuffers)
	for range putBuffers {
		free <- nil // grown on first use
	}
	cut := make(chan []byte, 1)
	hashed := make(chan queuedChunk, 1)
	files := make(chan pendingFile, syncQueue)
	m := &Manifest{Version: ManifestVersion, Key: key, Layout: Layout{Kind: LayoutReplicated}}
	var wg sync.WaitGroup
	for range syncWorkers {
		wg.Go(func() { p.syncFiles(ctx, files) })
	}
	wg.Go(func() {
		defer close(files)
		p.writeChunks(ctx, hashed, free, files)
	})
	wg.Go(func() {
		defer close(hashed)
		for buf := range cut {
			ref := ChunkRef{CID: SumChunk(buf), Offset: m.Size, Length: uint32(len(buf))}
			m.Chunks = append(m.Chunks, ref)
			m.Size += int64(len(buf))
			select {
			case hashed <- queuedChunk{ref: ref, buf: buf}:
			case <-ctx.Done():
				return
			}
		}
	})
	err := p.chunk(ctx, r, free, cut)
	close(cut)
	if err != nil {
		p.fail(err)
	}
	wg.Wait()
	if p.err != nil {
		return nil, p.err
	}
	return m, nil
}

// chunk splits r and sends a copy of each chunk to cut, in buffers taken
// from free.
func (p *put) chunk(ctx context.Context, r io.Reader, free <-chan []byte, cut chan<- []byte) error {
	c := NewChunker(r, p.s.params)
	for {
		data, err := c.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case cut <- append(buf[:0], data...):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// writeChunks writes each chunk that is neither held nor already written by
// this Put to a temporary file and queues it for its fsync. It holds every
// chunk it sees, so that no Remove drops it before Put indexes it.
func (p *put) writeChunks(ctx context.Context, queue <-chan queuedChunk, free chan<- []byte, files chan<- pendingFile) {
	for c := range queue {
		if ctx.Err() != nil {
			return // failed elsewhere; the error is already recorded
		}
		err := p.writeChunk(ctx, c, files)
		free <- c.buf // never blocks: free holds every buffer
		if err != nil {
			p.fail(err)
			return
		}
	}
}

func (p *put) writeChunk(ctx context.Context, c queuedChunk, files chan<- pendingFile) error {
	k := c.ref.CID.KeyString()
	if p.seen[k] {
		return nil
	}
	p.seen[k] = true
	p.s.hold(k)
	p.held = append(p.held, k)
	// A chunk already indexed is not written again. A file present but not
	// indexed (left by a crash) is not trusted: it is written anew and the
	// rename replaces it.
	if _, ok, err := p.s.present([]byte(k)); err != nil || ok {
		return err
	}
	if p.s.remote != nil {
		// The sync workers upload it; c.buf goes back to the chunker.
		select {
		case files <- pendingFile{id: c.ref.CID, data: bytes.Clone(c.buf)}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f, err := os.CreateTemp(filepath.Dir(p.s.chunkPath(c.ref.CID)), tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("writing chunk %s: %w", c.ref.CID, err)
	}
	if err := writeData(f, c.buf); err != nil {
		discard(f)
		return fmt.Errorf("writing chunk %s: %w", c.ref.CID, err)
	}
	select {
	case files <- pendingFile{id: c.ref.CID, f: f}:
		return nil
	case <-ctx.Done():
		discard(f)
		return ctx.Err()
	}
}

// syncFiles fsyncs, closes and renames into place the files it receives
// until files is closed. Once the Put has failed it only discards them.
func (p *put) syncFiles(ctx context.Context, files <-chan pendingFile) {
	for pf := range files {
		if pf.f == nil {
			p.upload(ctx, pf)
			continue
		}
		if ctx.Err() != nil {
			discard(pf.f)
			continue
		}
		path := p.s.chunkPath(pf.id)
		err := pf.f.Sync()
		if cerr := pf.f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			p.s.mu.Lock()
			err = os.Rename(pf.f.Name(), path)
			p.s.mu.Unlock()
		}
		if err != nil {
			os.Remove(pf.f.Name())
			p.fail(fmt.Errorf("writing chunk %s: %w", pf.id, err))
			continue
		}
		p.mu.Lock()
		p.written = append(p.written, pf.id)
		p.dirs[filepath.Dir(path)] = true
		p.mu.Unlock()
	}
}

// upload stores a chunk in the store's Backend; a chunk counts as written
// once the backend confirmed it.
func (p *put) upload(ctx context.Context, pf pendingFile) {
	if ctx.Err() != nil {
		return
	}
	if err := p.s.uploadChunk(ctx, pf.id, pf.data); err != nil {
		p.fail(fmt.Errorf("writing chunk %s: %w", pf.id, err))
		return
	}
	p.mu.Lock()
	p.written = append(p.written, pf.id)
	p.mu.Unlock()
}

// discard closes and deletes an unfinished temporary chunk file.
func discard(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// index writes the manifest object and pin marker, fsyncs their folders
// together with those the new chunk files were renamed into, then records
// the new chunks, the manifest and its references in one transaction.
func (p *put) index(root cid.Cid, m *Manifest, enc []byte) error {
	sizes := make(map[string]int, len(m.Chunks))
	for _, c := range m.Chunks {
		sizes[c.CID.KeyString()] = int(c.Length)
	}
	return p.s.recordWithObject(root, enc, flagPinned, p.dirs, func(tx *bolt.Tx, c *counters) error {
		for _, id := range p.written {
			if err := addChunk(tx, c, id.Bytes(), sizes[id.KeyString()]); err != nil {
				return err
			}
		}
		return recordManifest(tx, c, root, m, enc, flagPinned)
	})
}
