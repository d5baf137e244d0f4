package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Placement, the requester's side (docs/PROTOCOL.md "Replication
// protocol", docs/REPLICATION.md "Seeding"): the member acting for a content asks chosen
// storage members to hold it; each pulls the chunks with the multi-source
// fetcher from every member that has them and answers Done when its copy
// is complete.

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
	s, release, err := p2pstream.Open(ctx, r.host, p, r.slot.Get(), r.dial)
	if err != nil {
		return fmt.Errorf("placing %s on %s: %w", root, p, err)
	}
	defer release()
	c := proto.NewCodec(s)
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	if err := p2pstream.Send(c, &proto.PlaceRequest{ID: 1, Root: root, Manifest: enc, Wait: start != nil, Data: data}); err != nil {
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
				_ = p2pstream.Send(c, &proto.Bye{})
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
					if err := p2pstream.Send(c, &proto.PlaceStart{ID: 1}); err != nil {
						s.Reset()
						return fmt.Errorf("placing %s on %s: %w", root, p, err)
					}
				}
			}
		case *proto.ErrorResponse:
			s.Close()
			switch {
			case m.Code == proto.CodeNoSpace:
				return fmt.Errorf("placing %s on %s: %w: %s", root, p, ErrNoRoom, m.Message)
			case m.Code == proto.CodeRemoved:
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

// newPlacement returns the state of a placement not started yet.
func newPlacement() *placement {
	return &placement{changed: make(chan struct{}, 1), bytes: map[string]int64{}}
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
	if m.Coded() {
		return r.seedCoded(ctx, pl, root, m, progress)
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
	pl2 := newPlacement()
	finished := make(chan struct{})
	if need := pl.copies - have; need <= 0 || !r.background(ctx, func(ctx context.Context) {
		defer close(finished)
		r.place(ctx, pl, root, need, skip, holders, true, pl2)
	}) {
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
