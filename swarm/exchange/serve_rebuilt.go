package exchange

import (
	"context"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Serving rebuilt shards (docs/ERASURE.md "Repair"): the member repairing a
// coded content holds neither the chunks nor the lost shard sets; it
// rebuilds each lost shard from k others when the new holder asks for it,
// through a source the replicator registers here for the repair's
// lifetime.

// ShardSource returns the bytes of shard id, verified against id, or ok
// false when it cannot.
type ShardSource func(ctx context.Context, id cid.Cid) (data []byte, ok bool)

// rebuiltServer is the registry of shards served from a ShardSource.
type rebuiltServer struct {
	mu  sync.Mutex
	src map[string][]ShardSource // shard CID key → sources, latest last
}

// ServeShards makes this host serve the shards ids from src (a BlockRequest
// for one of them that the store and ServeCoded cannot answer asks src)
// until release is called.
func (x *Exchange) ServeShards(ids []cid.Cid, src ShardSource) (release func()) {
	rs := &x.rebuilt
	rs.mu.Lock()
	if rs.src == nil {
		rs.src = map[string][]ShardSource{}
	}
	keys := make([]string, 0, len(ids))
	for _, id := range ids {
		k := id.KeyString()
		keys = append(keys, k)
		rs.src[k] = append(rs.src[k], src)
	}
	rs.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			rs.mu.Lock()
			defer rs.mu.Unlock()
			for _, k := range keys {
				// Drop one registration: the sources of one call are
				// the same function, so the first one is as good.
				if l := rs.src[k]; len(l) <= 1 {
					delete(rs.src, k)
				} else {
					rs.src[k] = l[1:]
				}
			}
		})
	}
}

// rebuiltShard answers shard id from its latest registered source, checked
// against id once more (a source bug must not reach the wire as a shard).
func (x *Exchange) rebuiltShard(ctx context.Context, id cid.Cid) ([]byte, bool) {
	rs := &x.rebuilt
	rs.mu.Lock()
	l := rs.src[id.KeyString()]
	var src ShardSource
	if len(l) > 0 {
		src = l[len(l)-1]
	}
	rs.mu.Unlock()
	if src == nil {
		return nil, false
	}
	data, ok := src(ctx, id)
	if !ok {
		return nil, false
	}
	if err := chunk.VerifyChunk(id, data); err != nil {
		x.log.Warn("rebuilt shard does not match its CID", "shard", id, "err", err)
		return nil, false
	}
	return data, true
}
