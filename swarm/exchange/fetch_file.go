package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// This file fetches a content straight into a file (docs/EXCHANGE.md
// "Fetching into a file"): a client member's get writes each verified chunk
// at its offsets in the output and keeps nothing in its store.

// FetchInto fetches the content root (a manifest CID) into w: every chunk,
// verified against its CID, is written at each of its offsets, from the
// local store when it holds it and else from every holder at once. The
// manifest is neither recorded nor announced, and no chunk is stored. It
// returns the manifest; w holds the whole content only when the error is
// nil. progress, if not nil, is called after each chunk written.
func (x *Exchange) FetchInto(ctx context.Context, root cid.Cid, w io.WriterAt, progress func(FetchProgress)) (*chunk.Manifest, error) {
	if err := isManifest(root); err != nil {
		return nil, fmt.Errorf("fetching: %w", err)
	}
	pid := x.Protocol()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var cands <-chan peer.ID
	var first []peer.ID
	m, err := x.store.Manifest(ctx, root)
	if errors.Is(err, chunk.ErrNotFound) {
		if pid == "" {
			return nil, fmt.Errorf("fetching %s: %w", root, ErrNoSwarm)
		}
		cands = x.holders(ctx, root)
		var from peer.ID
		m, from, err = x.fetchManifest(ctx, pid, root, cands, false)
		if err != nil {
			return nil, err
		}
		first = []peer.ID{from}
	} else if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", root, err)
	}
	offsets := make(map[string][]int64, len(m.Chunks))
	for _, r := range m.Chunks {
		k := r.CID.KeyString()
		offsets[k] = append(offsets[k], r.Offset)
	}
	// One write at a time: the store workers verify side by side, but
	// parallel writes into one file contend in the kernel and cost ~1.7 ×
	// the CPU of the same writes in turn (docs/PERFORMANCE.md).
	var wmu sync.Mutex
	sink := func(id cid.Cid, data []byte) error {
		wmu.Lock()
		defer wmu.Unlock()
		for _, off := range offsets[id.KeyString()] {
			if _, err := w.WriteAt(data, off); err != nil {
				return fmt.Errorf("writing chunk %s at %d: %w", id, off, err)
			}
		}
		return nil
	}
	missing, err := x.copyHeld(ctx, m, sink)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", root, err)
	}
	// Decoded chunks go to the output as they come (docs/ERASURE.md "Get").
	if done, err := x.fetchCodedFirst(ctx, pid, root, m, missing, first, cands, progress, sink); done {
		if err != nil {
			return nil, err
		}
		return m, nil
	} else if m.Coded() {
		first, cands = nil, nil
	}
	f := x.newFetch(root, pid, m, missing, progress)
	f.sink = sink
	f.mu.Lock()
	p, seq := f.snapshot()
	f.mu.Unlock()
	f.report(p, seq)
	if f.left == 0 {
		return m, nil
	}
	if pid == "" {
		return nil, fmt.Errorf("fetching %s: %w", root, ErrNoSwarm)
	}
	if cands == nil {
		cands = x.holders(ctx, root)
	}
	if err := f.run(ctx, first, cands); err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fetching %s: %w", root, ctx.Err())
		}
		return nil, err
	}
	return m, nil
}

// copyHeld hands sink the chunks of m held in the local store and returns
// the others.
func (x *Exchange) copyHeld(ctx context.Context, m *chunk.Manifest, sink func(cid.Cid, []byte) error) ([]chunk.ChunkRef, error) {
	var missing []chunk.ChunkRef
	seen := make(map[string]bool, len(m.Chunks))
	var buf []byte
	for _, r := range m.Chunks {
		k := r.CID.KeyString()
		if seen[k] {
			continue
		}
		seen[k] = true
		data, err := x.store.GetChunkInto(ctx, r.CID, buf)
		if errors.Is(err, chunk.ErrNotFound) {
			missing = append(missing, r)
			continue
		}
		if err != nil {
			return nil, err
		}
		buf = data
		if err := sink(r.CID, data); err != nil {
			return nil, err
		}
	}
	return missing, nil
}

// putChunks takes a batch of received chunks: into the store (PutChunks
// verifies them), or, for FetchInto, verified and handed to the sink.
func (f *fetch) putChunks(ctx context.Context, items []chunk.ChunkData) []error {
	if f.sink == nil {
		return f.x.store.PutChunks(ctx, items)
	}
	errs := make([]error, len(items))
	for i, it := range items {
		if errs[i] = chunk.VerifyChunk(it.CID, it.Data); errs[i] == nil {
			errs[i] = f.sink(it.CID, it.Data)
		}
	}
	return errs
}
