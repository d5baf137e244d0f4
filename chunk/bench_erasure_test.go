package chunk_test

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"

	"github.com/klauspost/reedsolomon"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// BenchmarkErasure measures coding one 1 MiB chunk with 4+2 beside SHA-256
// of the same chunk (docs/PERFORMANCE.md#erasure-coding); every figure is
// per chunk byte:
//
//	go test -run XXX -bench Erasure -benchtime 300x ./chunk/
func BenchmarkErasure(b *testing.B) {
	const size, k, m = 1 << 20, 4, 2
	data := chunktest.Content(11, size)
	shards, ids, err := chunk.EncodeChunk(data, k, m)
	if err != nil {
		b.Fatal(err)
	}
	ref := chunk.ChunkRef{CID: chunk.SumChunk(data), Length: size, Shards: ids}
	b.Run("SHA256", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			sha256.Sum256(data)
		}
	})
	b.Run("EncodeShards", func(b *testing.B) { // Reed-Solomon only
		b.SetBytes(size)
		for range b.N {
			if _, err := chunk.EncodeShards(data, k, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EncodeShardsInto", func(b *testing.B) { // the same into a reused buffer
		b.SetBytes(size)
		buf := make([]byte, (m+1)*chunk.ShardSize(size, k))
		for range b.N {
			if _, err := chunk.EncodeShardsInto(buf, data, k, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("EncodeChunk", func(b *testing.B) { // plus the k+m shard CIDs
		b.SetBytes(size)
		for range b.N {
			if _, _, err := chunk.EncodeChunk(data, k, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	rs, err := reedsolomon.New(k, m)
	if err != nil {
		b.Fatal(err)
	}
	for _, missing := range []int{0, 1, 2} {
		b.Run(fmt.Sprintf("ReconstructData/missing%d", missing), func(b *testing.B) { // Reed-Solomon only
			b.SetBytes(size)
			for range b.N {
				in := slices.Clone(shards)
				for i := range missing {
					in[i] = nil
				}
				if err := rs.ReconstructData(in); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("DecodeChunkInto/missing%d", missing), func(b *testing.B) { // the same into a reused buffer
			b.SetBytes(size)
			buf := make([]byte, size)
			for range b.N {
				in := slices.Clone(shards)
				for i := range missing {
					in[i] = nil
				}
				if _, err := chunk.DecodeChunkInto(buf, ref, in, k, m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("DecodeChunk/missing%d", missing), func(b *testing.B) { // plus joining and verifying the chunk
			b.SetBytes(size)
			for range b.N {
				in := slices.Clone(shards)
				for i := range missing {
					in[i] = nil
				}
				if _, err := chunk.DecodeChunk(ref, in, k, m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
