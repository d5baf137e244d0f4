package chunk_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

const benchSize = 64 << 20

func benchChunk(b *testing.B, hash bool) {
	data := chunktest.Content(7, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		c := chunk.NewChunker(bytes.NewReader(data), chunk.DefaultParams)
		for {
			d, err := c.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if hash {
				sha256.Sum256(d)
			}
		}
	}
}

// BenchmarkChunker measures content-defined chunking alone.
func BenchmarkChunker(b *testing.B) { benchChunk(b, false) }

// BenchmarkChunkerSHA256 measures chunking plus hashing each chunk.
func BenchmarkChunkerSHA256(b *testing.B) { benchChunk(b, true) }

// BenchmarkSHA256 is the baseline: SHA-256 of the same bytes.
func BenchmarkSHA256(b *testing.B) {
	data := chunktest.Content(7, benchSize)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		sha256.Sum256(data)
	}
}
