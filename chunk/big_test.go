package chunk_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// TestDedupEdit stores 64 MiB (16 MiB under -race), then the same with 1 MiB
// overwritten in the middle. The store grows by the edit plus the chunks
// around it until the boundaries resynchronise: typically 2-3 MiB (see
// docs/PERFORMANCE-chunk.md for the spread), never more than the edit plus
// two maximal chunks.
func TestDedupEdit(t *testing.T) {
	size := 64 << 20
	if raceEnabled {
		size = 16 << 20
	}
	ctx := context.Background()
	s := openStore(t, t.TempDir(), chunk.Options{})
	data := chunktest.Content(1, size)
	if _, _, err := s.Put(ctx, bytes.NewReader(data), int64(size), ""); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Used
	copy(data[size/2:], chunktest.Content(2, 1<<20))
	root, _, err := s.Put(ctx, bytes.NewReader(data), int64(size), "")
	if err != nil {
		t.Fatal(err)
	}
	grown := s.Stats().Used - before
	t.Logf("1 MiB edit in %d MiB grew the store by %.2f MiB", size>>20, float64(grown)/(1<<20))
	if limit := int64(1<<20 + 2*chunk.DefaultParams.Max); grown < 1<<20 || grown > limit {
		t.Fatalf("store grew by %d bytes, want 1 MiB..%d", grown, limit)
	}
	var buf bytes.Buffer
	if _, err := s.WriteTo(ctx, root, &buf); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("edited content does not read back: %v", err)
	}
}

// genReader yields n pseudo-random bytes without holding them.
type genReader struct {
	r *rand.ChaCha8
	n int64
}

func newGenReader(seed byte, n int64) *genReader {
	return &genReader{r: rand.NewChaCha8([32]byte{seed}), n: n}
}

func (g *genReader) Read(p []byte) (int, error) {
	if g.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.n {
		p = p[:g.n]
	}
	g.r.Read(p)
	g.n -= int64(len(p))
	return len(p), nil
}

// heapPeak samples HeapInuse until stop is closed and returns the peak.
func heapPeak(stop <-chan struct{}) <-chan uint64 {
	res := make(chan uint64, 1)
	go func() {
		var peak uint64
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				res <- peak
				return
			default:
				runtime.Gosched()
			}
		}
	}()
	return res
}

// TestPutStreams puts 256 MiB (64 MiB under -race) from a reader that never
// holds it and reads it back to a discarding writer: the heap must stay
// within a few chunks.
func TestPutStreams(t *testing.T) {
	size := int64(256 << 20)
	if raceEnabled {
		size = 64 << 20
	}
	ctx := context.Background()
	s := openStore(t, t.TempDir(), chunk.Options{})
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	stop := make(chan struct{})
	peak := heapPeak(stop)
	root, _, err := s.Put(ctx, newGenReader(3, size), size, "")
	var n int64
	if err == nil {
		n, err = s.WriteTo(ctx, root, io.Discard)
	}
	close(stop)
	grown := int64(<-peak) - int64(base)
	if err != nil || n != size {
		t.Fatalf("round trip: %d bytes, %v", n, err)
	}
	t.Logf("peak heap growth %.1f MiB for %d MiB", float64(grown)/(1<<20), size>>20)
	if limit := int64(64 << 20); grown > limit {
		t.Fatalf("heap grew by %d bytes, over %d", grown, limit)
	}
}
