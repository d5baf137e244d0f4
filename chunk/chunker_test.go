package chunk_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// chunkAll returns copies of every chunk of data.
func chunkAll(t testing.TB, data []byte, p chunk.Params) [][]byte {
	t.Helper()
	var out [][]byte
	c := chunk.NewChunker(bytes.NewReader(data), p)
	for range len(data)/p.Min + 2 {
		b, err := c.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, bytes.Clone(b))
	}
	t.Fatal("chunker produced more chunks than len/min")
	return nil
}

func TestChunkerBounds(t *testing.T) {
	for _, p := range []chunk.Params{chunk.DefaultParams, {Min: 64, Avg: 256, Max: 1024}, {Min: 1000, Avg: 4096, Max: 9999}} {
		t.Run(fmt.Sprint(p), func(t *testing.T) {
			n := 40 * p.Max
			if raceEnabled {
				n = 8 * p.Max
			}
			data := chunktest.Content(1, n+123)
			chunks := chunkAll(t, data, p)
			again := chunkAll(t, data, p)
			if len(again) != len(chunks) {
				t.Fatal("chunking the same data twice gave different chunks")
			}
			for i := range chunks {
				if !bytes.Equal(chunks[i], again[i]) {
					t.Fatalf("chunk %d differs between two runs", i)
				}
			}
			if got := bytes.Join(chunks, nil); !bytes.Equal(got, data) {
				t.Fatal("chunks do not reassemble the input")
			}
			sizes := map[bool]int{}
			for i, c := range chunks {
				if len(c) > p.Max || (len(c) < p.Min && i != len(chunks)-1) {
					t.Fatalf("chunk %d of %d has %d bytes, outside [%d, %d]", i, len(chunks), len(c), p.Min, p.Max)
				}
				sizes[len(c) == p.Max]++
			}
			// Random data must produce content-defined cuts, not just Max-sized pieces.
			if sizes[false] < len(chunks)/2 {
				t.Fatalf("%d of %d chunks are cut at max", sizes[true], len(chunks))
			}
		})
	}
}

func TestChunkerZeros(t *testing.T) {
	p := chunk.Params{Min: 64, Avg: 256, Max: 1024}
	chunks := chunkAll(t, make([]byte, 10*p.Max+5), p)
	if len(chunks) != 11 || len(chunks[0]) != p.Max || len(chunks[10]) != 5 {
		t.Fatalf("zeros: %d chunks, want 10 of max and one of 5", len(chunks))
	}
}

func TestChunkerEmptyAndSmall(t *testing.T) {
	if got := chunkAll(t, nil, chunk.DefaultParams); len(got) != 0 {
		t.Fatalf("empty input gave %d chunks", len(got))
	}
	data := chunktest.Content(2, 1000)
	got := chunkAll(t, data, chunk.DefaultParams)
	if len(got) != 1 || !bytes.Equal(got[0], data) {
		t.Fatalf("short input gave %d chunks", len(got))
	}
}

// TestChunkerInsert inserts one byte in the middle of 64 MiB (16 MiB under
// -race) and checks that at most 3 chunks differ.
func TestChunkerInsert(t *testing.T) {
	size := 64 << 20
	if raceEnabled {
		size = 16 << 20
	}
	data := chunktest.Content(3, size)
	a := chunkAll(t, data, chunk.DefaultParams)
	mid := len(data) / 2
	edited := append(append(append([]byte{}, data[:mid]...), 0x42), data[mid:]...)
	b := chunkAll(t, edited, chunk.DefaultParams)
	old := map[string]bool{}
	for _, c := range a {
		old[string(c)] = true
	}
	changed := 0
	for _, c := range b {
		if !old[string(c)] {
			changed++
		}
	}
	t.Logf("%d chunks, average %d bytes; %d changed by the insert", len(a), len(data)/len(a), changed)
	if changed == 0 || changed > 3 {
		t.Fatalf("%d chunks changed by a 1-byte insert, want 1..3", changed)
	}
}

type errReader struct{ n int }

func (r *errReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), r.n, 1000)
	r.n -= n
	return n, nil
}

func TestChunkerReadError(t *testing.T) {
	c := chunk.NewChunker(&errReader{n: 10 << 20}, chunk.DefaultParams)
	for range 100 {
		_, err := c.Next()
		if err == io.EOF {
			t.Fatal("read error turned into EOF")
		}
		if err != nil {
			return
		}
	}
	t.Fatal("read error never reported")
}

func TestParamsValidate(t *testing.T) {
	bad := []chunk.Params{{}, {Min: 10, Avg: 256, Max: 1024}, {Min: 64, Avg: 300, Max: 1024}, {Min: 512, Avg: 256, Max: 1024},
		{Min: 64, Avg: 256, Max: 256}, {Min: 1 << 20, Avg: 2 << 20, Max: 8 << 20}}
	for _, p := range bad {
		if err := p.Validate(); !errors.Is(err, chunk.ErrBadParams) {
			t.Errorf("%v: got %v, want chunk.ErrBadParams", p, err)
		}
	}
	if err := chunk.DefaultParams.Validate(); err != nil {
		t.Fatal(err)
	}
}
