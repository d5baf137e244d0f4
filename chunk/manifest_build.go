package chunk

import (
	"context"
	"fmt"
	"io"
	"sync"
)

// This file builds a content's manifest without storing its chunks: a
// client member serves its put straight from the file it was given
// (docs/STORE.md "What a client member keeps").

// Params returns the chunking parameters of the store.
func (s *Store) Params() Params { return s.params }

// ManifestOf chunks r and returns the manifest of its content under the
// git-annex key (which may be empty), writing nothing. It reads r once;
// chunking runs in the calling goroutine and hashing in another, as in Put
// (BuildManifest does both in one).
func ManifestOf(ctx context.Context, r io.Reader, p Params, key string) (*Manifest, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("building manifest: %w", err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("building manifest: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, 3)
	for range cap(free) {
		free <- nil // grown on first use
	}
	cut := make(chan []byte, 1)
	m := &Manifest{Version: ManifestVersion, Key: key, Layout: Layout{Kind: LayoutReplicated}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for buf := range cut {
			m.Chunks = append(m.Chunks, ChunkRef{CID: SumChunk(buf), Offset: m.Size, Length: uint32(len(buf))})
			m.Size += int64(len(buf))
			free <- buf // never blocks: free holds every buffer
		}
	})
	err := cutChunks(ctx, NewChunker(r, p), free, cut)
	close(cut)
	wg.Wait()
	if err != nil {
		return nil, fmt.Errorf("building manifest: %w", err)
	}
	return m, nil
}

// cutChunks sends a copy of each chunk of c to cut, in buffers taken from
// free, until the stream ends.
func cutChunks(ctx context.Context, c *Chunker, free <-chan []byte, cut chan<- []byte) error {
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
		cut <- append(buf[:0], data...)
	}
}
