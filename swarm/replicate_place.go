package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
)

// Placement (docs/REPLICATION.md "Replication protocol", docs/REPLICATION.md
// "Seeding"): the member acting for a content asks chosen storage members to
// hold it; each pulls the chunks with the multi-source fetcher from every
// member that has them and answers Done when its copy is complete.

// Timeouts of the replication protocol.
const (
	// placeIdle bounds the wait for the next message of a placement stream;
	// a responder sends a keep-alive status at least every placeKeepAlive.
	placeIdle      = time.Minute
	placeKeepAlive = 5 * time.Second
	// readyWait bounds how long the seeder waits for every new holder to be
	// Ready before it lets them start anyway.
	readyWait = 30 * time.Second
)

// Sentinel errors of placement.
var (
	// ErrNoRoom is returned when a member refuses a copy for lack of space.
	ErrNoRoom = errors.New("swarm: no room for the copy")
	// ErrRemoved is returned when a member refuses a copy of removed content.
	ErrRemoved = errors.New("swarm: content was removed")
	// ErrBelowMin is returned by Seed when fewer than copies_min storage
	// members could take a copy.
	ErrBelowMin = errors.New("swarm: fewer copies than copies_min")
)

// Refusal messages of a PlaceRequest's ErrorResponse (CodeRefused).
const (
	refuseNoSpace    = "no space"
	refuseRemoved    = "removed"
	refuseNotStorage = "not a storage member"
)

// SeedProgress is the state of a Seed: the bytes each new holder has.
type SeedProgress struct {
	Total   int64
	Holders map[string]int64 // peer ID → bytes held, Total once complete
	Done    int              // copies complete (this host's own included)
}

// placeOn asks p to hold root and waits for its Done. enc, when not nil,
// is the encoded manifest sent along, and data, when not nil, the whole
// (small) content (docs/REPLICATION.md "Inline placement"). With start not
// nil the responder waits for it after Ready; ready is called once either
// way (at Ready, or when the placement ends before). progress gets the
// responder's bytes.
func (r *Replicator) placeOn(ctx context.Context, p peer.ID, root cid.Cid, enc, data []byte, ready func(), start <-chan struct{}, progress func(int64)) error {
	var once sync.Once
	signal := func() {
		if ready != nil {
			once.Do(ready)
		}
	}
	defer signal()
	pid := r.slot.get()
	if pid == "" {
		return ErrNoSwarm
	}
	dctx, cancel := context.WithTimeout(ctx, r.x.fetchOpts.DialTimeout)
	s, err := r.host.NewStream(dctx, p, pid)
	cancel()
	if err != nil {
		return fmt.Errorf("placing %s on %s: opening stream: %w", root, p, err)
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	c := proto.NewCodec(s)
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	if err := send(c, &proto.PlaceRequest{ID: 1, Root: root, Manifest: enc, Wait: start != nil, Data: data}); err != nil {
		s.Reset()
		return fmt.Errorf("placing %s on %s: %w", root, p, err)
	}
	for {
		_ = s.SetReadDeadline(time.Now().Add(placeIdle))
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			return fmt.Errorf("placing %s on %s: %w", root, p, err)
		}
		switch m := msg.(type) {
		case *proto.PlaceStatus:
			if progress != nil {
				progress(int64(m.Bytes))
			}
			switch m.State {
			case proto.PlaceDone:
				_ = send(c, &proto.Bye{})
				s.Close()
				return nil
			case proto.PlaceReady:
				signal()
				if start != nil {
					select {
					case <-start:
					case <-ctx.Done():
						s.Reset()
						return ctx.Err()
					}
					_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
					if err := send(c, &proto.PlaceStart{ID: 1}); err != nil {
						s.Reset()
						return fmt.Errorf("placing %s on %s: %w", root, p, err)
					}
				}
			}
		case *proto.ErrorResponse:
			s.Close()
			switch {
			case m.Code == proto.CodeRefused && strings.HasPrefix(m.Message, refuseNoSpace):
				return fmt.Errorf("placing %s on %s: %w: %s", root, p, ErrNoRoom, m.Message)
			case m.Code == proto.CodeRefused && strings.HasPrefix(m.Message, refuseRemoved):
				return fmt.Errorf("placing %s on %s: %w", root, p, ErrRemoved)
			}
			return fmt.Errorf("placing %s on %s: %w", root, p, m)
		default:
			s.Reset()
			return fmt.Errorf("placing %s on %s: unexpected %s: %w", root, p, msg.Type(), proto.ErrInvalid)
		}
	}
}

// placement is one run of place: its outcome so far.
type placement struct {
	mu      sync.Mutex
	done    []peer.ID
	noRoom  bool
	removed bool
	changed chan struct{}
	bytes   map[string]int64
}

// place puts `need` new copies of root on storage members not in skip,
// trying the next candidate in placement order when one refuses or fails.
// seed turns on super-seeding and the Ready barrier (the first put of a
// content). It returns when every attempt has ended; p reports as it goes.
func (r *Replicator) place(ctx context.Context, pl policy, root cid.Cid, need int, skip map[peer.ID]bool, holders []peer.ID, seed bool, p *placement) {
	m, err := r.store.Manifest(ctx, root)
	if err != nil {
		r.log.Warn("placing: reading manifest", "cid", root, "err", err)
		return
	}
	enc, err := m.Encode()
	if err != nil {
		r.log.Warn("placing: encoding manifest", "cid", root, "err", err)
		return
	}
	cands := r.candidates(pl, root, skip, holders)
	if len(cands) < need {
		p.mu.Lock()
		p.noRoom = p.noRoom || len(cands) == 0
		p.mu.Unlock()
	}
	first := cands[:min(need, len(cands))]
	rest := cands[len(first):]
	// A small content travels inside the request: no fetch, no
	// super-seeding (it would save less than it costs in round trips).
	data, err := r.inlineData(ctx, root, m)
	if err != nil {
		r.log.Warn("placing: reading content", "cid", root, "err", err)
		return
	}
	if seed && len(first) > 1 && data == nil {
		r.seed.add(m)
		defer r.seed.remove(m)
	} else {
		seed = false
	}

	type result struct {
		peer peer.ID
		err  error
	}
	results := make(chan result)
	var readyWG sync.WaitGroup
	var start chan struct{}
	if seed {
		start = make(chan struct{})
	}
	launch := func(q peer.ID, barrier bool) {
		undo := r.addPending(root, q)
		var ready func()
		var st <-chan struct{}
		if barrier {
			readyWG.Add(1)
			ready, st = readyWG.Done, start
		}
		go func() {
			defer undo()
			err := r.placeOn(ctx, q, root, enc, data, ready, st, func(n int64) {
				p.mu.Lock()
				p.bytes[q.String()] = n
				p.mu.Unlock()
				poke(p.changed)
			})
			results <- result{q, err}
		}()
	}
	for _, q := range first {
		launch(q, seed)
	}
	if seed {
		go func() {
			waitGroupOrTimeout(&readyWG, readyWait)
			close(start)
		}()
	}
	running := len(first)
	for running > 0 {
		res := <-results
		running--
		if res.err == nil {
			r.log.Info("copy placed", "cid", root, "peer", res.peer)
			p.mu.Lock()
			p.done = append(p.done, res.peer)
			p.mu.Unlock()
			poke(p.changed)
			continue
		}
		r.log.Info("placement failed; trying the next member", "cid", root, "peer", res.peer, "err", res.err)
		switch {
		case errors.Is(res.err, ErrNoRoom):
			r.mu.Lock()
			r.noSpace[res.peer] = time.Now()
			r.mu.Unlock()
		case errors.Is(res.err, ErrRemoved):
			p.mu.Lock()
			p.removed = true
			p.mu.Unlock()
			rest = nil
		}
		if len(rest) > 0 && ctx.Err() == nil {
			launch(rest[0], false)
			rest = rest[1:]
			running++
			continue
		}
		p.mu.Lock()
		if errors.Is(res.err, ErrNoRoom) {
			p.noRoom = true
		}
		p.mu.Unlock()
	}
	r.mu.Lock()
	p.mu.Lock()
	if len(p.done) < need && p.noRoom {
		r.noRoom[root.KeyString()] = true
	} else {
		delete(r.noRoom, root.KeyString())
	}
	p.mu.Unlock()
	r.mu.Unlock()
	poke(p.changed)
}

// inlineData returns the content of root when it is small enough to travel
// inside a PlaceRequest, else nil.
func (r *Replicator) inlineData(ctx context.Context, root cid.Cid, m *chunk.Manifest) ([]byte, error) {
	if m.Size == 0 || m.Size > proto.MaxInlineSize {
		return nil, nil
	}
	var buf bytes.Buffer
	buf.Grow(int(m.Size))
	if _, err := r.store.WriteTo(ctx, root, &buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func waitGroupOrTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// Seed brings a content just stored here to its target: it clears an
// earlier removal of it, places copies on the chosen storage members
// (super-seeding when several) and returns once copies_min storage members
// hold a verified full copy (this host counts when it is one). The other
// copies continue in the background. Without a swarm it does nothing.
func (r *Replicator) Seed(ctx context.Context, root cid.Cid, progress func(SeedProgress)) (int, error) {
	pl, ok := r.currentPolicy()
	if !ok {
		return 0, nil
	}
	if err := r.restore(ctx, root); err != nil {
		r.log.Warn("clearing an earlier removal", "cid", root, "err", err)
	}
	m, err := r.store.Manifest(ctx, root)
	if err != nil {
		return 0, fmt.Errorf("seeding %s: %w", root, err)
	}
	skip := map[peer.ID]bool{pl.self: true}
	var holders []peer.ID
	if pl.storage {
		holders = append(holders, pl.self)
	}
	// No survey first: placement order is the same on every put of root,
	// so members chosen before that still hold it answer Done at once, and
	// only copies verified now count toward copies_min.
	have := len(holders)
	pl2 := &placement{changed: make(chan struct{}, 1), bytes: map[string]int64{}}
	finished := make(chan struct{})
	if need := pl.copies - have; need > 0 {
		go func() {
			defer close(finished)
			r.place(r.background(), pl, root, need, skip, holders, true, pl2)
		}()
	} else {
		close(finished)
	}
	report := func() int {
		pl2.mu.Lock()
		defer pl2.mu.Unlock()
		n := have + len(pl2.done)
		if progress != nil {
			sp := SeedProgress{Total: m.Size, Holders: map[string]int64{}, Done: n}
			for k, v := range pl2.bytes {
				sp.Holders[k] = v
			}
			progress(sp)
		}
		return n
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		n := report()
		if n >= pl.min {
			return n, nil
		}
		select {
		case <-finished:
			n = report()
			if n >= pl.min {
				return n, nil
			}
			pl2.mu.Lock()
			noRoom, removed := pl2.noRoom, pl2.removed
			pl2.mu.Unlock()
			switch {
			case removed:
				return n, fmt.Errorf("seeding %s: %w", root, ErrRemoved)
			case noRoom:
				return n, fmt.Errorf("seeding %s: %d of copies_min %d copies: no storage member has room: %w", root, n, pl.min, ErrBelowMin)
			}
			return n, fmt.Errorf("seeding %s: %d of copies_min %d copies (members reachable: %d): %w", root, n, pl.min, len(r.candidates(pl, root, nil, nil)), ErrBelowMin)
		case <-pl2.changed:
		case <-t.C:
		case <-ctx.Done():
			return report(), fmt.Errorf("seeding %s: %w", root, ctx.Err())
		}
	}
}

// handle serves a replication stream: a placement, or removal records.
func (r *Replicator) handle(s network.Stream) {
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
		err = r.serve(s, c, from, m)
	case *proto.Removal:
		err = r.receiveRemovals(s, c, from, m)
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
	if len(msg) > proto.MaxErrorMessage {
		msg = msg[:proto.MaxErrorMessage]
	}
	return send(c, &proto.ErrorResponse{ID: id, Code: code, Message: msg})
}

// serve handles one PlaceRequest: checks, the manifest, room, the Ready
// barrier, a fetch slot, the fetch (with keep-alive statuses) and Done.
func (r *Replicator) serve(s network.Stream, c *proto.Codec, from peer.ID, m *proto.PlaceRequest) error {
	ctx := r.background()
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	pl, ok := r.currentPolicy()
	if !ok || !pl.storage {
		return refuse(c, m.ID, proto.CodeRefused, refuseNotStorage)
	}
	if r.tombs.removed(m.Root) {
		return refuse(c, m.ID, proto.CodeRefused, refuseRemoved)
	}
	if err := r.store.Health(); err != nil {
		return refuse(c, m.ID, proto.CodeRefused, "store backend failing: "+err.Error())
	}
	// From here the repair round must not resume this content itself.
	defer r.busyFetching(m.Root)()
	if len(m.Data) > 0 {
		return r.serveInline(ctx, s, c, m)
	}
	man, added, err := r.placedManifest(ctx, from, m)
	if err != nil {
		code := proto.CodeBadRequest
		if errors.Is(err, chunk.ErrNoSpace) {
			return refuse(c, m.ID, proto.CodeRefused, refuseNoSpace+": "+err.Error())
		}
		return refuse(c, m.ID, code, err.Error())
	}
	if need, free, ok := r.room(ctx, m.Root); !ok {
		if added {
			_ = r.store.Remove(ctx, m.Root)
		}
		return refuse(c, m.ID, proto.CodeRefused, fmt.Sprintf("%s: %d bytes needed, %d free", refuseNoSpace, need, free))
	}
	total := uint64(man.Size)
	var wmu sync.Mutex
	status := func(st proto.PlaceState, n uint64) error {
		wmu.Lock()
		defer wmu.Unlock()
		_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
		return send(c, &proto.PlaceStatus{ID: m.ID, State: st, Bytes: min(n, total), Total: total})
	}
	if m.Wait {
		if err := status(proto.PlaceReady, 0); err != nil {
			return err
		}
		_ = s.SetReadDeadline(time.Now().Add(readyWait + placeIdle))
		if _, err := recvAs[*proto.PlaceStart](c); err != nil {
			return err
		}
	}
	if err := r.fetchPlaced(ctx, m.Root, status); err != nil {
		return refuse(c, m.ID, proto.CodeInternal, err.Error())
	}
	return placeDone(s, c, status, total)
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
func (r *Replicator) serveInline(ctx context.Context, s network.Stream, c *proto.Codec, m *proto.PlaceRequest) error {
	man, err := verifiedManifest(m.Root, m.Manifest)
	if err != nil {
		return refuse(c, m.ID, proto.CodeBadRequest, err.Error())
	}
	if err := r.storeInline(ctx, man, m.Data); err != nil {
		if errors.Is(err, chunk.ErrNoSpace) {
			return refuse(c, m.ID, proto.CodeRefused, refuseNoSpace+": "+err.Error())
		}
		return refuse(c, m.ID, proto.CodeInternal, err.Error())
	}
	r.provideBackground(ctx, m.Root)
	total := uint64(man.Size)
	return placeDone(s, c, func(st proto.PlaceState, n uint64) error {
		_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
		return send(c, &proto.PlaceStatus{ID: m.ID, State: st, Bytes: n, Total: total})
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
		pid := r.x.Protocol()
		if pid == "" {
			return nil, false, ErrNoSwarm
		}
		var err error
		if man, err = r.x.askManifest(ctx, pid, from, m.Root); err != nil {
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
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(placeKeepAlive)
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
					return
				}
			}
		}
	}()
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.slots }()
	mu.Lock()
	state = proto.PlaceFilling
	mu.Unlock()
	err := r.x.Fetch(ctx, root, func(p FetchProgress) {
		mu.Lock()
		bytes = uint64(p.Bytes)
		mu.Unlock()
	})
	if err != nil {
		return err
	}
	r.provideBackground(ctx, root)
	return nil
}

// provideBackground announces a placed copy of root without waiting.
func (r *Replicator) provideBackground(ctx context.Context, root cid.Cid) {
	go func() {
		pctx, cancel := context.WithTimeout(ctx, provideTimeout)
		defer cancel()
		if err := r.x.Provide(pctx, root); err != nil {
			r.log.Debug("announcing a placed copy", "cid", root, "err", err)
		}
	}()
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
