package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// The holder's side of a shard placement (docs/ERASURE.md "Put", "Wire
// additions"): the responder checks the manifest and the assignment,
// fetches only the shards of its set from the requester, verifies and
// stores them with Store.PutShards, and answers Done when HeldShards lists
// the set.

// shardBatch is how many shard bytes a holder gathers before it stores
// them (one index transaction per batch).
const shardBatch = 32 << 20

// codedExchange is what shard placement needs of the chunk exchange beyond
// Exchange (*exchange.Exchange implements it).
type codedExchange interface {
	// FetchShards fetches the shards ids from p, verified, in order.
	FetchShards(ctx context.Context, p peer.ID, ids []cid.Cid, fn func(j int, data []byte) error) error
	// ServeCoded serves the shards of m by coding its chunks on demand.
	ServeCoded(m *chunk.Manifest) (release func())
	// ServeShards serves the shards ids from src (a repair's rebuilt
	// shards).
	ServeShards(ids []cid.Cid, src exchange.ShardSource) (release func())
}

// serveShards handles a PlaceRequest for one shard set.
func (r *Replicator) serveShards(ctx context.Context, s network.Stream, c *proto.Codec, from peer.ID, m *proto.PlaceRequest) error {
	cx, ok := r.x.(codedExchange)
	if !ok {
		return refuse(c, m.ID, proto.CodeRefused, "shard placement not supported")
	}
	man, err := verifiedManifest(m.Root, m.Manifest)
	if err != nil {
		return refuse(c, m.ID, proto.CodeBadRequest, err.Error())
	}
	i := m.ShardIndex()
	if !man.Coded() || i >= man.Layout.K+man.Layout.M {
		return refuse(c, m.ID, proto.CodeRefused, fmt.Sprintf("shard set %d of a version %d manifest", i, man.Version))
	}
	// One set of a content per member (docs/ERASURE.md "Put"): a
	// placement of another set here, from a repair that counted this
	// member lost, is refused.
	if held, err := r.store.HeldShards(ctx, m.Root); err == nil {
		for _, h := range held {
			if h != i {
				return refuse(c, m.ID, proto.CodeRefused, fmt.Sprintf("shard set %d: this member holds set %d of the content", i, h))
			}
		}
	}
	ids, _ := man.ShardSet(i)
	var total uint64
	for _, ch := range man.Chunks {
		total += uint64(chunk.ShardSize(int(ch.Length), man.Layout.K))
	}
	var wmu sync.Mutex
	status := func(st proto.PlaceState, n uint64) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
		return p2pstream.Send(c, &proto.PlaceStatus{ID: m.ID, State: st, Bytes: min(n, total), Total: total})
	}
	// Shards not held yet (a retry, or a new version of a content whose
	// set i is here, finds some held: docs/ERASURE.md "Put") and the room
	// they need. Held is asked per shard CID, not per root: the new
	// version's manifest is not recorded yet.
	need, want := int64(0), make([]int, 0, len(ids))
	seen := map[string]bool{}
	for j, id := range ids {
		if seen[id.KeyString()] {
			continue
		}
		seen[id.KeyString()] = true
		if ok, err := r.store.HasChunk(id); err == nil && ok {
			continue
		}
		want = append(want, j)
		need += int64(chunk.ShardSize(int(man.Chunks[j].Length), man.Layout.K))
	}
	if st := r.store.Stats(); st.Limit > 0 && need > st.Limit-st.Used {
		return refuse(c, m.ID, proto.CodeNoSpace, fmt.Sprintf("shard set %d: %d bytes needed, %d free", i, need, max(st.Limit-st.Used, 0)))
	}
	var got uint64
	var gmu sync.Mutex
	stop := make(chan struct{})
	var keepAlive sync.WaitGroup
	keepAlive.Go(func() {
		t := time.NewTicker(placeKeepAlive)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				gmu.Lock()
				n := got
				gmu.Unlock()
				if status(proto.PlaceFilling, n) != nil {
					return
				}
			}
		}
	})
	err = r.fetchSet(ctx, cx, from, man, i, ids, want, func(n int) {
		gmu.Lock()
		got += uint64(n)
		gmu.Unlock()
	})
	close(stop)
	keepAlive.Wait()
	if err != nil {
		if errors.Is(err, chunk.ErrNoSpace) {
			return refuse(c, m.ID, proto.CodeNoSpace, err.Error())
		}
		return refuse(c, m.ID, proto.CodeInternal, err.Error())
	}
	held, err := r.store.HeldShards(ctx, m.Root)
	if err != nil || !containsInt(held, i) {
		return refuse(c, m.ID, proto.CodeInternal, fmt.Sprintf("shard set %d not held after its fetch: %v", i, err))
	}
	r.x.Announce(m.Root)
	r.log.Info("shard set held", "cid", m.Root, "set", i, "from", from)
	return placeDone(s, c, status, total)
}

// fetchSet fetches shards want (positions in ids) of set i from p and
// stores them in batches; with nothing to fetch it records the manifest.
func (r *Replicator) fetchSet(ctx context.Context, cx codedExchange, p peer.ID, man *chunk.Manifest, i int, ids []cid.Cid, want []int, progress func(int)) error {
	batch := make([][]byte, len(ids))
	size := 0
	flush := func() error {
		_, err := r.store.PutShards(ctx, man, i, batch)
		clear(batch)
		size = 0
		return err
	}
	list := make([]cid.Cid, len(want))
	for q, j := range want {
		list[q] = ids[j]
	}
	err := cx.FetchShards(ctx, p, list, func(q int, data []byte) error {
		batch[want[q]] = append([]byte(nil), data...)
		size += len(data)
		progress(len(data))
		if size >= shardBatch {
			return flush()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("fetching shard set %d from %s: %w", i, p, err)
	}
	return flush()
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}
