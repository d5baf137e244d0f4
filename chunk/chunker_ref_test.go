package chunk

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// refCut is the definition of a chunk boundary (docs/MANIFEST.md#chunking)
// written the plain way, one byte at a time: the length of the chunk at the
// start of rest, which is everything left of the stream.
func refCut(rest []byte, p Params) int {
	n := len(rest)
	if n <= p.Min {
		return n
	}
	n = min(n, p.Max)
	normal := min(p.Avg, n)
	b := bits.TrailingZeros(uint(p.Avg))
	maskS := ^uint64(0) << (64 - (b + 2))
	maskL := ^uint64(0) << (64 - (b - 2))
	var h uint64
	i := p.Min
	for ; i+8 <= normal; i += 8 {
		for j := range 8 {
			if h = h<<1 + gear[rest[i+j]]; h&maskS == 0 {
				return i + j + 1
			}
		}
	}
	for ; i+8 <= n; i += 8 {
		for j := range 8 {
			if h = h<<1 + gear[rest[i+j]]; h&maskL == 0 {
				return i + j + 1
			}
		}
	}
	return n
}

// choppyReader returns reads of random lengths, often short, so that the
// Chunker has to decide boundaries on partial data.
type choppyReader struct {
	data []byte
	rng  *rand.Rand
}

func (r *choppyReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.data), 1+r.rng.IntN(3*len(p)/2+1))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// TestChunkerMatchesDefinition compares the Chunker, fed in reads of random
// lengths, with refCut on random, low-entropy and zero data.
func TestChunkerMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	params := []Params{DefaultParams, {Min: 64, Avg: 256, Max: 1024}, {Min: 1000, Avg: 4096, Max: 9999}, {Min: 4 << 10, Avg: 16 << 10, Max: 64 << 10}}
	for _, p := range params {
		for kind := range 3 {
			t.Run(fmt.Sprint(p, kind), func(t *testing.T) {
				size := 12*p.Max + rng.IntN(p.Max)
				data := make([]byte, size)
				switch kind {
				case 0:
					for i := range data {
						data[i] = byte(rng.Uint32())
					}
				case 1: // runs of a few byte values
					for i := range data {
						data[i] = byte(rng.IntN(3))
					}
				}
				var want []int
				for rest := data; len(rest) > 0; {
					n := refCut(rest, p)
					want = append(want, n)
					rest = rest[n:]
				}
				c := NewChunker(&choppyReader{data: data, rng: rng}, p)
				var got []int
				var joined bytes.Buffer
				for range len(want) + 1 {
					b, err := c.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, len(b))
					joined.Write(b)
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("chunk lengths differ from the definition:\ngot  %v\nwant %v", got, want)
				}
				if !bytes.Equal(joined.Bytes(), data) {
					t.Fatal("chunks do not reassemble the input")
				}
			})
		}
	}
}
