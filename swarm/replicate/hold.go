package replicate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Placement, the holder's side (docs/PROTOCOL.md "Replication
// protocol"): the replication stream handler, the checks before a copy is
// taken, the fetch with its keep-alive statuses, and inline placement.

// handle serves a replication stream as work of Run (so that stopping
// waits for it); the stream is reset when Run is not running.
func (r *Replicator) handle(s network.Stream) {
	wait, cancel := context.WithTimeout(context.Background(), taskWait)
	defer cancel()
	if !r.tasks.Do(wait, func(ctx context.Context) { r.serveStream(ctx, s) }) {
		s.Reset()
	}
}

// serveStream serves a replication stream: a placement, or removal
// records. The stream is reset when ctx ends.
func (r *Replicator) serveStream(ctx context.Context, s network.Stream) {
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	from := s.Conn().RemotePeer()
	c := proto.NewCodec(s)
	_ = s.SetReadDeadline(time.Now().Add(placeIdle))
	msg, err := c.Recv()
	if err != nil {
		s.Reset()
		return
	}
	switch m := msg.(type) {
	case *proto.PlaceRequest:
		err = r.serve(ctx, s, c, from, m)
	case *proto.Removal:
		err = r.receiveRemovals(ctx, s, c, from, m)
	default:
		err = fmt.Errorf("%s does not open a replication stream: %w", msg.Type(), proto.ErrInvalid)
	}
	if err != nil {
		r.log.Debug("replication stream reset", "peer", from, "err", err)
		s.Reset()
		return
	}
	s.Close()
}

// refuse answers a placement with an ErrorResponse.
func refuse(c *proto.Codec, id uint64, code proto.ErrorCode, msg string) error {
	return p2pstream.Send(c, p2pstream.ErrorReply(id, code, msg))
}

// serve handles one PlaceRequest: checks, the manifest, room, the Ready
// barrier, a fetch slot, the fetch (with keep-alive statuses) and Done.
func (r *Replicator) serve(ctx context.Context, s network.Stream, c *proto.Codec, from peer.ID, m *proto.PlaceRequest) error {
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	pl, ok := r.currentPolicy()
	if !ok || !pl.storage {
		return refuse(c, m.ID, proto.CodeRefused, "not a storage member")
	}
	// A Restore record carried in the request is kept before the check
	// for a removal, and durable before Done (docs/REPLICATION.md
	// "Restore carried in the placement").
	var kept <-chan error
	if m.Restore != nil {
		var err error
		if kept, err = r.keepCarried(pl, m.Restore); err != nil {
			return refuse(c, m.ID, proto.CodeBadRequest, err.Error())
		}
	}
	if r.tombs.removed(m.Root) {
		if kept != nil {
			<-kept
		}
		return refuse(c, m.ID, proto.CodeRemoved, "removed")
	}
	if kept != nil && len(m.Data) == 0 {
		// Only the small inline placement writes its copy meanwhile.
		if err := <-kept; err != nil {
			return refuse(c, m.ID, proto.CodeInternal, "keeping the restore record: "+err.Error())
		}
		kept = nil
	}
	if err := r.store.Health(); err != nil {
		return refuse(c, m.ID, proto.CodeRefused, "store backend failing: "+err.Error())
	}
	// From here the repair round must not resume this content itself.
	defer r.busyFetching(m.Root)()
	if m.Shards != 0 {
		return r.serveShards(ctx, s, c, from, m)
	}
	if len(m.Data) > 0 {
		return r.serveInline(ctx, s, c, m, kept)
	}
	man, added, err := r.placedManifest(ctx, from, m)
	if err != nil {
		code := proto.CodeBadRequest
		if errors.Is(err, chunk.ErrNoSpace) {
			return refuse(c, m.ID, proto.CodeNoSpace, err.Error())
		}
		return refuse(c, m.ID, code, err.Error())
	}
	if need, free, ok := r.room(ctx, m.Root); !ok {
		if added {
			_ = r.store.Remove(ctx, m.Root)
		}
		return refuse(c, m.ID, proto.CodeNoSpace, fmt.Sprintf("%d bytes needed, %d free", need, free))
	}
	total := uint64(man.Size)
	var wmu sync.Mutex
	status := func(st proto.PlaceState, n uint64) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
		return p2pstream.Send(c, &proto.PlaceStatus{ID: m.ID, State: st, Bytes: min(n, total), Total: total})
	}
	if m.Wait {
		if err := status(proto.PlaceReady, 0); err != nil {
			return err
		}
		_ = s.SetReadDeadline(time.Now().Add(readyWait + placeIdle))
		if _, err := p2pstream.RecvAs[*proto.PlaceStart](c); err != nil {
			return err
		}
	}
	if err := r.fetchPlaced(ctx, m.Root, status); err != nil {
		// The placer tries another member: a partial copy here would only
		// take room and be resumed in vain.
		r.dropPartial(ctx, m.Root, err)
		if isNoSpace(err) {
			return refuse(c, m.ID, proto.CodeNoSpace, "out of space while fetching: "+err.Error())
		}
		return refuse(c, m.ID, proto.CodeInternal, err.Error())
	}
	return placeDone(s, c, status, total)
}

// isNoSpace reports whether err is a lack of room: the store's limit, or
// the file system full (ENOSPC).
func isNoSpace(err error) bool {
	return errors.Is(err, chunk.ErrNoSpace) || errors.Is(err, syscall.ENOSPC)
}

// dropPartial removes root's partial copy after a fetch for it failed
// with err (a placement, or a resume of one), unless the copy is complete,
// another fetch of it runs here, or this replicator is stopping (a copy
// interrupted by a restart is resumed). It reports whether it removed it.
// The repair round's resume calls it so that a copy that cannot complete
// is not retried every round.
func (r *Replicator) dropPartial(ctx context.Context, root cid.Cid, err error) bool {
	if ctx.Err() != nil || r.complete(ctx, root) {
		return false
	}
	r.mu.Lock()
	others := r.fetching[root.KeyString()] > 1
	r.mu.Unlock()
	if others {
		return false
	}
	if rerr := r.store.Remove(ctx, root); rerr != nil && !errors.Is(rerr, chunk.ErrNotFound) {
		r.log.Warn("dropping a partial copy that cannot complete", "cid", root, "err", rerr)
		return false
	}
	r.log.Info("partial copy dropped", "cid", root, "err", err)
	return true
}

// placeDone answers Done and waits for the requester's Bye (a courtesy).
func placeDone(s network.Stream, c *proto.Codec, status func(proto.PlaceState, uint64) error, total uint64) error {
	if err := status(proto.PlaceDone, total); err != nil {
		return err
	}
	_ = s.SetReadDeadline(time.Now().Add(placeIdle))
	_, _ = c.Recv()
	return nil
}

// serveInline handles a PlaceRequest that carries its content
// (docs/REPLICATION.md "Inline placement"): the manifest and every chunk
// are verified, then stored in one index transaction.
func (r *Replicator) serveInline(ctx context.Context, s network.Stream, c *proto.Codec, m *proto.PlaceRequest, kept <-chan error) error {
	man, badErr := verifiedManifest(m.Root, m.Manifest)
	var err error
	if badErr == nil {
		err = r.storeInline(ctx, man, m.Data)
	}
	if kept != nil {
		// The carried Restore record, made durable while the copy was
		// written: without it a restart would delete the copy.
		if kerr := <-kept; kerr != nil && badErr == nil && err == nil {
			return refuse(c, m.ID, proto.CodeInternal, "keeping the restore record: "+kerr.Error())
		}
	}
	if badErr != nil {
		return refuse(c, m.ID, proto.CodeBadRequest, badErr.Error())
	}
	if err != nil {
		if errors.Is(err, chunk.ErrNoSpace) {
			return refuse(c, m.ID, proto.CodeNoSpace, err.Error())
		}
		return refuse(c, m.ID, proto.CodeInternal, err.Error())
	}
	r.x.Announce(m.Root)
	total := uint64(man.Size)
	return placeDone(s, c, func(st proto.PlaceState, n uint64) error {
		_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
		return p2pstream.Send(c, &proto.PlaceStatus{ID: m.ID, State: st, Bytes: n, Total: total})
	}, total)
}

// verifiedManifest decodes an encoded manifest sent for root.
func verifiedManifest(root cid.Cid, enc []byte) (*chunk.Manifest, error) {
	if got := chunk.ManifestCID(enc); !got.Equals(root) {
		return nil, fmt.Errorf("manifest hashes to %s, not %s: %w", got, root, chunk.ErrBadManifest)
	}
	return chunk.DecodeManifest(enc)
}

// busyFetching marks root as being fetched here; the returned func unmarks it.
func (r *Replicator) busyFetching(root cid.Cid) func() {
	k := root.KeyString()
	r.mu.Lock()
	r.fetching[k]++
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		if r.fetching[k]--; r.fetching[k] <= 0 {
			delete(r.fetching, k)
		}
		r.mu.Unlock()
	}
}

// placedManifest stores the manifest of a placement (sent along, or fetched
// from the requester) and says whether it was new here.
func (r *Replicator) placedManifest(ctx context.Context, from peer.ID, m *proto.PlaceRequest) (*chunk.Manifest, bool, error) {
	if man, err := r.store.Manifest(ctx, m.Root); err == nil {
		return man, false, nil
	}
	var man *chunk.Manifest
	if len(m.Manifest) > 0 {
		var err error
		if man, err = verifiedManifest(m.Root, m.Manifest); err != nil {
			return nil, false, err
		}
	} else {
		var err error
		if man, err = r.x.FetchManifest(ctx, from, m.Root); err != nil {
			return nil, false, err
		}
	}
	if _, err := r.store.PutManifest(ctx, man); err != nil {
		return nil, false, err
	}
	return man, true, nil
}

// room reports whether the chunks of root not held fit under the storage
// limit, with the bytes needed and free.
func (r *Replicator) room(ctx context.Context, root cid.Cid) (need, free int64, ok bool) {
	missing, err := r.store.Missing(ctx, root)
	if err != nil {
		return 0, 0, false
	}
	for _, c := range missing {
		need += int64(c.Length)
	}
	st := r.store.Stats()
	if st.Limit <= 0 {
		return need, -1, true
	}
	free = max(st.Limit-st.Used, 0)
	return need, free, need <= free
}

// fetchPlaced fetches root for a placement in one of the fetch slots,
// sending keep-alive statuses, and announces it when complete. A fetch of
// the same root already running here is joined rather than repeated.
func (r *Replicator) fetchPlaced(ctx context.Context, root cid.Cid, status func(proto.PlaceState, uint64) error) error {
	var mu sync.Mutex
	state, bytes := proto.PlaceQueued, uint64(0)
	// The keep-alive goroutine has ended before fetchPlaced returns, so
	// that the caller's next message never races a status on the stream.
	// A status that cannot be sent means the placer is gone (it gave up,
	// or failed): the fetch is then abandoned.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := make(chan struct{})
	var keepAlive sync.WaitGroup
	defer keepAlive.Wait()
	defer close(stop)
	keepAlive.Go(func() {
		t := time.NewTicker(min(placeKeepAlive, r.stall/4))
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				st, n := state, bytes
				mu.Unlock()
				if status(st, n) != nil {
					cancel()
					return
				}
			}
		}
	})
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	mu.Lock()
	state = proto.PlaceFilling
	mu.Unlock()
	err := r.x.Fetch(ctx, root, func(p exchange.FetchProgress) {
		mu.Lock()
		bytes = uint64(p.Bytes)
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	r.x.Announce(root)
	return nil
}

// storeInline stores a content sent inside its PlaceRequest: data must be
// exactly the content of man, and every chunk cut from it at the
// manifest's offsets is verified against its CID; the chunks and the
// manifest are recorded together, or nothing is.
func (r *Replicator) storeInline(ctx context.Context, man *chunk.Manifest, data []byte) error {
	if int64(len(data)) != man.Size {
		return fmt.Errorf("inline content is %d bytes, the manifest says %d: %w", len(data), man.Size, proto.ErrInvalid)
	}
	items := make([]chunk.ChunkData, 0, len(man.Chunks))
	seen := map[string]bool{}
	for _, c := range man.Chunks {
		end := c.Offset + int64(c.Length)
		if c.Offset < 0 || end > int64(len(data)) {
			return fmt.Errorf("inline content: chunk at %d+%d outside %d bytes: %w", c.Offset, c.Length, len(data), proto.ErrInvalid)
		}
		if k := c.CID.KeyString(); !seen[k] {
			seen[k] = true
			items = append(items, chunk.ChunkData{CID: c.CID, Data: data[c.Offset:end]})
		}
	}
	if _, err := r.store.PutContent(ctx, man, items); err != nil {
		return fmt.Errorf("storing inline content: %w", err)
	}
	return nil
}
