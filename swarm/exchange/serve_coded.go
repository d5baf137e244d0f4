package exchange

import (
	"context"
	"math/bits"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Serving the shards of coded contents (docs/ERASURE.md "Put"): a holder
// serves the shards it stores as chunks; the uploader of a coded content
// holds its chunks, not its shards, and serves a shard by coding its chunk
// on demand. The n holders ask for shards of the same chunk at about the
// same time, so the last few coded chunks are kept (codedCacheChunks).

// codedCacheChunks is how many coded chunks the on-demand coder keeps: at
// the 8 MiB chunk bound and 4+2, some 12 MiB each.
const codedCacheChunks = 4

// shardRef says where a shard comes from: shard idx of chunk ref under k+m.
type shardRef struct {
	ref  chunk.ChunkRef
	idx  int
	k, m int
}

// codedServer is the registry of shards served by coding on demand.
type codedServer struct {
	mu     sync.Mutex
	shards map[string]shardRef // shard CID key → its chunk
	count  map[string]int      // shard CID key → registrations
	cache  []codedChunk        // most recent last
	spare  *codedChunk         // the buffers of the last chunk evicted, for reuse
}

// codedChunk is a chunk coded on demand: its shards alias raw and parity.
type codedChunk struct {
	id          cid.Cid
	raw, parity []byte
	shards      [][]byte
}

// ServeCoded makes this host serve every shard of the coded content m by
// coding its chunks (held here) on demand, until release is called. It is
// how an uploader serves the n holders of a put without storing shards.
func (x *Exchange) ServeCoded(m *chunk.Manifest) (release func()) {
	if !m.Coded() {
		return func() {}
	}
	cs := &x.coded
	cs.mu.Lock()
	if cs.shards == nil {
		cs.shards, cs.count = map[string]shardRef{}, map[string]int{}
	}
	var keys []string
	for _, c := range m.Chunks {
		for i, s := range c.Shards {
			k := s.KeyString()
			keys = append(keys, k)
			cs.count[k]++
			cs.shards[k] = shardRef{ref: c, idx: i, k: m.Layout.K, m: m.Layout.M}
		}
	}
	cs.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			cs.mu.Lock()
			defer cs.mu.Unlock()
			for _, k := range keys {
				if cs.count[k]--; cs.count[k] <= 0 {
					delete(cs.count, k)
					delete(cs.shards, k)
				}
			}
			if len(cs.shards) == 0 {
				cs.cache = nil
			}
		})
	}
}

// codedShard returns shard id coded from its chunk when id is registered
// by ServeCoded and the chunk is held here, or from its source when it is
// registered by ServeShards; ok is false otherwise. The result is a copy
// the caller owns.
func (x *Exchange) codedShard(ctx context.Context, id cid.Cid) (data []byte, ok bool) {
	cs := &x.coded
	cs.mu.Lock()
	sr, found := cs.shards[id.KeyString()]
	if found {
		for _, c := range cs.cache {
			if c.id.Equals(sr.ref.CID) {
				data = append([]byte(nil), c.shards[sr.idx]...)
				break
			}
		}
	}
	cs.mu.Unlock()
	if !found {
		return x.rebuiltShard(ctx, id)
	}
	if data != nil {
		return data, true
	}
	// Coding into reused buffers (PERFORMANCE.md#erasure-coding: allocating
	// fresh parity costs as much as hashing).
	var cc codedChunk
	cs.mu.Lock()
	if cs.spare != nil {
		cc, cs.spare = *cs.spare, nil
	}
	cs.mu.Unlock()
	raw, err := x.store.GetChunkInto(ctx, sr.ref.CID, cc.raw)
	if err != nil {
		return nil, false
	}
	if len(raw) == 0 {
		return nil, false
	}
	size := chunk.ShardSize(len(raw), sr.k)
	if need := (sr.k + sr.m - len(raw)/size) * size; cap(cc.parity) < need {
		cc.parity = make([]byte, need)
	}
	shards, err := chunk.EncodeShardsInto(cc.parity, raw, sr.k, sr.m)
	if err != nil {
		return nil, false
	}
	cc = codedChunk{id: sr.ref.CID, raw: raw, parity: cc.parity, shards: shards}
	if err := chunk.VerifyChunk(id, shards[sr.idx]); err != nil {
		x.log.Warn("coded shard does not match its CID", "shard", id, "chunk", sr.ref.CID, "err", err)
		return nil, false
	}
	// Copied before the chunk is cached: once cached, another request may
	// evict it and reuse its buffers.
	out := append([]byte(nil), shards[sr.idx]...)
	cs.mu.Lock()
	cs.cache = append(cs.cache, cc)
	if len(cs.cache) > codedCacheChunks {
		old := cs.cache[0]
		cs.cache = cs.cache[1:]
		cs.spare = &old
	}
	cs.mu.Unlock()
	return out, true
}

// heldShardMask returns the HaveResponse Shards of the coded content root
// held here: a bit per shard set held in full.
func (x *Exchange) heldShardMask(ctx context.Context, root cid.Cid) uint32 {
	held, err := x.store.HeldShards(ctx, root)
	if err != nil {
		return 0
	}
	var mask uint32
	for _, i := range held {
		if i < 32 {
			mask |= 1 << i
		}
	}
	return mask
}

// ShardMask is the Shards field of a HaveResponse for sets: bit i for each i.
func ShardMask(sets []int) uint32 {
	var mask uint32
	for _, i := range sets {
		if i >= 0 && i < 32 {
			mask |= 1 << i
		}
	}
	return mask
}

// MaskSets lists the shard sets of a HaveResponse Shards field, in order.
func MaskSets(mask uint32) []int {
	out := make([]int, 0, bits.OnesCount32(mask))
	for i := range 32 {
		if mask&(1<<i) != 0 {
			out = append(out, i)
		}
	}
	return out
}
