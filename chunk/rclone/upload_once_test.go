package rclone_test

import (
	"bytes"
	"context"
	"sync"
	"testing"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
)

// overlapWatch is the real rclone backend, counting the uploads of each
// chunk object in flight at once.
type overlapWatch struct {
	chunk.Backend
	mu       sync.Mutex
	inFlight map[string]int
	overlaps int
}

func (w *overlapWatch) Put(ctx context.Context, kind chunk.ObjectKind, id cid.Cid, data []byte) error {
	k := chunk.ObjectName(kind, id)
	w.mu.Lock()
	w.inFlight[k]++
	if w.inFlight[k] > 1 {
		w.overlaps++
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.inFlight[k]--
		w.mu.Unlock()
	}()
	return w.Backend.Put(ctx, kind, id, data)
}

// TestPutsOfOneContentUploadEachChunkOnce: puts of contents sharing chunks
// at the same time never upload one object twice at once (rclone answers
// "object not found" to one of two uploads of an object over its
// streaming cutoff, 100 KiB: the chunk suite's Concurrent case failed so
// under CI), and every put succeeds and reads back.
func TestPutsOfOneContentUploadEachChunkOnce(t *testing.T) {
	w := rclonetest.Start(t)
	watch := &overlapWatch{Backend: startBackend(t, w, rclonetest.RemoteName+":once"), inFlight: map[string]int{}}
	s := openStore(t, t.TempDir(), watch, 0)
	ctx := context.Background()
	for round := range 3 {
		data := chunktest.Content(uint64(500+round), 2<<20)
		var wg sync.WaitGroup
		roots := make([]cid.Cid, 6)
		errs := make([]error, 6)
		for i := range roots {
			wg.Go(func() {
				roots[i], _, errs[i] = s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, put %d: %v", round, i, err)
			}
		}
		get(t, s, roots[0], data)
	}
	if watch.overlaps > 0 {
		t.Fatalf("%d uploads of an object began while another upload of it was in flight", watch.overlaps)
	}
}
