package replicate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
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
	// queuedStall multiplies the stall bound for a holder that is Queued:
	// waiting for one of its fetch slots, held by other placements.
	queuedStall = 10
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
	// ErrStalled is returned when a placement made no progress for the
	// stall bound (Options.PlaceStall) and was abandoned.
	ErrStalled = errors.New("swarm: placement made no progress")
)

// SeedProgress is the state of a Seed: the bytes each new holder has.
type SeedProgress struct {
	Total   int64
	Holders map[string]int64 // peer ID → bytes held, Total once complete
	Done    int              // copies complete (this host's own included)
}

// placeOn asks p to hold root and waits for its Done. enc, when not nil,
// is the encoded manifest sent along, and data, when not nil, the whole
// (small) content (docs/REPLICATION.md "Inline placement"); restore, when
// not nil, is this put's Restore record of root, carried in the request. With start not
// nil the responder waits for it after Ready; ready is called once either
// way (with true at Ready, with false when the placement ends before).
// progress gets the responder's bytes. A placement whose bytes and state have not moved for
// r.stall (queuedStall times that while the responder is Queued; the wait
// for start aside) is abandoned with ErrStalled.
func (r *Replicator) placeOn(ctx context.Context, p peer.ID, root cid.Cid, enc, data []byte, restore *proto.Removal, ready func(bool), start <-chan struct{}, progress func(int64)) error {
	err := r.placeOnce(ctx, p, root, enc, data, restore, ready, start, progress)
	if restore != nil && errors.Is(err, ErrRemoved) {
		// A member that does not know PlaceRequest.Restore: it gets the
		// record on its own stream first, as before that field.
		if serr := r.sendRemovals(ctx, p, []*proto.Removal{restore}); serr == nil {
			err = r.placeOnce(ctx, p, root, enc, data, nil, ready, start, progress)
		}
	}
	return err
}

// placeOnce is one PlaceRequest of placeOn, restore carried when not nil.
func (r *Replicator) placeOnce(ctx context.Context, p peer.ID, root cid.Cid, enc, data []byte, restore *proto.Removal, ready func(bool), start <-chan struct{}, progress func(int64)) error {
	var once sync.Once
	signal := func(ok bool) {
		if ready != nil {
			once.Do(func() { ready(ok) })
		}
	}
	defer signal(false)
	s, release, err := p2pstream.Open(ctx, r.host, p, r.slot.Get(), r.dial)
	if err != nil {
		return fmt.Errorf("placing %s on %s: %w", root, p, err)
	}
	defer release()
	c := proto.NewCodec(s)
	_ = s.SetWriteDeadline(time.Now().Add(placeIdle))
	if err := p2pstream.Send(c, &proto.PlaceRequest{ID: 1, Root: root, Manifest: enc, Wait: start != nil, Data: data, Restore: restore}); err != nil {
		s.Reset()
		return fmt.Errorf("placing %s on %s: %w", root, p, err)
	}
	moved := time.Now() // the last progress: more bytes, or a new state
	var lastState proto.PlaceState
	var lastBytes uint64
	for {
		bound := r.stall
		if lastState == proto.PlaceQueued {
			// Busy with other placements, whose own placers bound them.
			bound *= queuedStall
		}
		deadline := moved.Add(bound)
		rd := time.Now().Add(placeIdle)
		if deadline.Before(rd) {
			rd = deadline
		}
		_ = s.SetReadDeadline(rd)
		msg, err := c.Recv()
		if err != nil {
			s.Reset()
			if time.Now().After(deadline) && ctx.Err() == nil {
				return fmt.Errorf("placing %s on %s: %w: %s at %d bytes for %v", root, p, ErrStalled, stateName(lastState), lastBytes, bound)
			}
			return fmt.Errorf("placing %s on %s: %w", root, p, err)
		}
		switch m := msg.(type) {
		case *proto.PlaceStatus:
			if progress != nil {
				progress(int64(m.Bytes))
			}
			if m.State != lastState || m.Bytes > lastBytes {
				moved, lastState, lastBytes = time.Now(), m.State, max(lastBytes, m.Bytes)
			} else if time.Since(moved) >= bound {
				s.Reset()
				return fmt.Errorf("placing %s on %s: %w: %s at %d bytes for %v", root, p, ErrStalled, stateName(m.State), m.Bytes, bound)
			}
			switch m.State {
			case proto.PlaceDone:
				_ = p2pstream.Send(c, &proto.Bye{})
				s.Close()
				return nil
			case proto.PlaceReady:
				signal(true)
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
					moved = time.Now()
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

// stateName names a placement state for messages.
func stateName(st proto.PlaceState) string {
	switch st {
	case 0:
		return "requested"
	case proto.PlaceQueued:
		return "queued"
	case proto.PlaceFilling:
		return "filling"
	case proto.PlaceReady:
		return "ready"
	case proto.PlaceDone:
		return "done"
	}
	return fmt.Sprintf("state %d", st)
}

// placement is one run of place: its outcome so far.
type placement struct {
	mu      sync.Mutex
	done    []peer.ID
	noRoom  bool
	removed bool
	failed  []failure // members that could not take the copy, in order
	changed chan struct{}
	bytes   map[string]int64
	// first is how many of the new holders the caller waits for (Seed:
	// copies_min less the copies already here); when it is 1 and several
	// are seeded, the first is fed alone and the others follow from it.
	first int
	// m and data, when m is set, are the content's manifest and its
	// bytes (a small content): place sends them and reads nothing from
	// the store, which may not hold them yet (SeedStoring).
	m    *chunk.Manifest
	data []byte
	// restore, when set, is this put's Restore record of the content,
	// carried in every PlaceRequest.
	restore *proto.Removal
}

// failure is why one member did not take a copy.
type failure struct {
	peer peer.ID
	err  error
}

// newPlacement returns the state of a placement not started yet.
func newPlacement() *placement {
	return &placement{changed: make(chan struct{}, 1), bytes: map[string]int64{}}
}

// why says, in one line, which members could not take the copy and why,
// naming them as the definition does; "" when none failed.
func (p *placement) why(pl policy) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	for _, f := range p.failed {
		parts = append(parts, memberName(pl, f.peer)+": "+failureReason(f.err))
	}
	return strings.Join(parts, "; ")
}

// memberName is p's name in the definition, else its peer ID.
func memberName(pl policy, p peer.ID) string {
	if m, ok := pl.def.Member(rules.PeerID(p)); ok && m.Name != "" {
		return m.Name
	}
	return p.String()
}

// failureReason is a short reason for a failed placement.
func failureReason(err error) string {
	switch {
	case errors.Is(err, ErrNoRoom):
		return "no room"
	case errors.Is(err, ErrStalled):
		return "no progress"
	case errors.Is(err, ErrRemoved):
		return "removed"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "cancelled"
	}
	var er *proto.ErrorResponse
	if errors.As(err, &er) {
		return "failed: " + er.Message
	}
	return "unreachable"
}

// place puts `need` new copies of root on storage members not in skip,
// trying the next candidate in placement order when one refuses, fails or
// makes no progress for r.stall (docs/REPLICATION.md "Failure and
// progress"). seed turns on super-seeding and the Ready barrier (the first
// put of a content). It returns when every attempt has ended; p reports as
// it goes.
func (r *Replicator) place(ctx context.Context, pl policy, root cid.Cid, need int, skip map[peer.ID]bool, holders []peer.ID, seed bool, p *placement) {
	m, data := p.m, p.data
	if m == nil {
		var err error
		if m, err = r.store.Manifest(ctx, root); err != nil {
			r.log.Warn("placing: reading manifest", "cid", root, "err", err)
			return
		}
		// A small content travels inside the request: no fetch, no
		// super-seeding (it would save less than it costs in round
		// trips).
		if data, err = r.inlineData(ctx, root, m); err != nil {
			r.log.Warn("placing: reading content", "cid", root, "err", err)
			return
		}
	}
	enc, err := m.Encode()
	if err != nil {
		r.log.Warn("placing: encoding manifest", "cid", root, "err", err)
		return
	}
	cands := r.candidates(pl, root, skip, holders)
	// Members skipped because they refused for lack of room lately: when
	// too few are left, the content is short of room, not of members.
	full := len(r.fullAmong(pl, skip)) > 0
	first := cands[:min(need, len(cands))]
	rest := cands[len(first):]
	// The first holders (docs/REPLICATION.md "copies_min first"), chosen
	// when the fetches start; prioMu guards prio from then on.
	var prio []peer.ID
	var prioMu sync.Mutex
	ended := false // the seeding is over: no first holder is chosen after
	if seed && len(first) > 1 && data == nil {
		r.seed.add(m)
		defer func() {
			prioMu.Lock()
			defer prioMu.Unlock()
			r.seed.remove(m, prio...)
			ended = true
		}()
	} else {
		seed = false
	}

	type result struct {
		peer peer.ID
		err  error
	}
	results := make(chan result)
	var bar *readyBarrier
	var start chan struct{}
	if seed {
		bar, start = newReadyBarrier(len(first)), make(chan struct{})
	}
	launch := func(q peer.ID, barrier bool) {
		undo := r.addPending(root, q)
		var ready func(bool)
		var st <-chan struct{}
		if barrier {
			ready = func(ok bool) { bar.signal(q, ok) }
			st = start
		}
		go func() {
			defer undo()
			err := r.placeOn(ctx, q, root, enc, data, p.restore, ready, st, func(n int64) {
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
			ready := bar.wait(readySettle, readyWait)
			// One first holder only: two or more would share their
			// upload between each other and the followers, and complete
			// no sooner than everyone. It is the first new holder in
			// placement order that is Ready: one frozen or far slower
			// than the others is not waited for.
			if p.first == 1 {
				prioMu.Lock()
				if !ended {
					prio = firstReady(first, ready)
					r.seed.promote(m, prio...)
				}
				prioMu.Unlock()
			}
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
		if seed {
			// What went to it may never reach the others, and the
			// followers no longer wait for it.
			prioMu.Lock()
			i := slices.Index(prio, res.peer)
			r.seed.release(m, res.peer, i >= 0)
			if i >= 0 {
				prio = slices.Delete(prio, i, i+1)
			}
			prioMu.Unlock()
		}
		p.mu.Lock()
		p.failed = append(p.failed, failure{res.peer, res.err})
		p.mu.Unlock()
		switch {
		case errors.Is(res.err, ErrNoRoom):
			r.markFull(res.peer)
			full = true
		case errors.Is(res.err, ErrRemoved):
			p.mu.Lock()
			p.removed = true
			p.mu.Unlock()
			rest = nil
		}
		if len(rest) > 0 && ctx.Err() == nil {
			r.log.Info("placement failed; trying the next member", "cid", root, "peer", res.peer, "next", rest[0], "err", res.err)
			launch(rest[0], false)
			rest = rest[1:]
			running++
			continue
		}
		r.log.Info("placement failed; no member left to try", "cid", root, "peer", res.peer, "err", res.err)
	}
	p.mu.Lock()
	short := len(p.done) < need
	p.noRoom = short && full
	p.mu.Unlock()
	r.setNoRoom(root, short && full)
	poke(p.changed)
}

// markFull records that p refused a copy for lack of room (or ran out of
// space while taking one): placement skips it for noSpaceFor.
func (r *Replicator) markFull(p peer.ID) {
	r.mu.Lock()
	r.noSpace[p] = time.Now()
	r.mu.Unlock()
}

// fullAmong lists the storage members, not in skip, that refused for lack
// of room less than noSpaceFor ago.
func (r *Replicator) fullAmong(pl policy, skip map[peer.ID]bool) []peer.ID {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []peer.ID
	for _, p := range pl.storagePeers() {
		if t, ok := r.noSpace[p]; ok && !skip[p] && time.Since(t) < noSpaceFor {
			out = append(out, p)
		}
	}
	return out
}

// FullMembers names the storage members that refused a copy for lack of
// room (up front or when their disk filled mid-transfer) less than a
// minute ago; placement skips them meanwhile.
func (r *Replicator) FullMembers() []string {
	pl, ok := r.currentPolicy()
	if !ok {
		return nil
	}
	var out []string
	for _, p := range r.fullAmong(pl, nil) {
		out = append(out, memberName(pl, p))
	}
	slices.Sort(out)
	return out
}

// setNoRoom records whether the last placement of root ended short for
// lack of room.
func (r *Replicator) setNoRoom(root cid.Cid, short bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if short {
		r.noRoom[root.KeyString()] = true
	} else {
		delete(r.noRoom, root.KeyString())
	}
}

// stillNoRoom is what the repair round counts as no_room for the content
// k at level lv: the last placement of it ended short for lack of room and
// it is still below target. A content back at its target (placed by
// another member, or room came back) is no longer short of room, and its
// mark is cleared.
func (r *Replicator) stillNoRoom(k string, lv level) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if lv == atTarget {
		delete(r.noRoom, k)
		return false
	}
	return r.noRoom[k]
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

// firstReady returns the first of cands, in placement order, that is in
// ready; with none Ready, the first of cands (the barrier timed out: the
// fetches start anyway).
func firstReady(cands, ready []peer.ID) []peer.ID {
	for _, q := range cands {
		if slices.Contains(ready, q) {
			return []peer.ID{q}
		}
	}
	return cands[:1]
}

// Seed brings a content just stored here to its target: it clears an
// earlier removal of it, places copies on the chosen storage members
// (super-seeding when several) and returns once copies_min storage members
// hold a verified full copy (this host counts when it is one). The other
// copies continue in the background. Without a swarm it does nothing.
func (r *Replicator) Seed(ctx context.Context, root cid.Cid, progress func(SeedProgress)) (int, error) {
	return r.seedWith(ctx, root, newPlacement(), progress)
}

// SeedStoring is Seed for a small replicated content (at most
// proto.MaxInlineSize bytes) that the caller is storing here at the same
// time: m is its manifest (root its CID) and data its bytes, sent inside
// the placement requests, so that the members' durable copies are made
// while this member makes its own (docs/REPLICATION.md "Inline
// placement"). This member counts as a holder when it is a storage
// member, as in Seed: the caller fails the put when its own store fails.
func (r *Replicator) SeedStoring(ctx context.Context, root cid.Cid, m *chunk.Manifest, data []byte, progress func(SeedProgress)) (int, error) {
	if m.Coded() || int64(len(data)) != m.Size || m.Size > proto.MaxInlineSize {
		return 0, fmt.Errorf("seeding %s while storing it: only a small replicated content (%d bytes given of %d)", root, len(data), m.Size)
	}
	p := newPlacement()
	p.m, p.data = m, data
	return r.seedWith(ctx, root, p, progress)
}

// seedWith is Seed with the placement's state p (which may give the content).
func (r *Replicator) seedWith(ctx context.Context, root cid.Cid, pl2 *placement, progress func(SeedProgress)) (int, error) {
	pl, ok := r.currentPolicy()
	if !ok {
		return 0, nil
	}
	m := pl2.m
	if m == nil {
		var err error
		if m, err = r.store.Manifest(ctx, root); err != nil {
			return 0, fmt.Errorf("seeding %s: %w", root, err)
		}
	}
	// A put of a content removed before clears the removal with a Restore
	// record. The new holders get it inside their PlaceRequests, while it
	// is made durable here; the other members get it once the placements
	// end (docs/REPLICATION.md "Restore carried in the placement"). Shard
	// placements do not carry it: it reaches every member first.
	rec, err := r.restoreRecord(root)
	if err != nil {
		r.log.Warn("clearing an earlier removal", "cid", root, "err", err)
	}
	if m.Coded() {
		if rec != nil {
			if err := r.keepAndSpread(ctx, pl, []*proto.Removal{rec}, nil); err != nil {
				r.log.Warn("clearing an earlier removal", "cid", root, "err", err)
			}
		}
		return r.seedCoded(ctx, pl, root, m, progress)
	}
	if rec != nil {
		pl2.restore = rec
		kept := r.persistAsync(rec)
		defer func() {
			if err := <-kept; err != nil {
				r.log.Warn("clearing an earlier removal", "cid", root, "err", err)
			}
			r.background(context.WithoutCancel(ctx), func(ctx context.Context) { r.spreadRemovals(ctx, pl) })
		}()
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
	pl2.first = pl.min - have
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
			if removed {
				return n, fmt.Errorf("seeding %s: %w", root, ErrRemoved)
			}
			why := pl2.why(pl)
			if full := r.fullAmong(pl, map[peer.ID]bool{pl.self: true}); noRoom && why == "" {
				for _, q := range full {
					why += memberName(pl, q) + ": no room (lately); "
				}
				why = strings.TrimSuffix(why, "; ")
			}
			if why == "" {
				why = fmt.Sprintf("%d storage member(s) reachable", len(r.candidates(pl, root, nil, nil)))
			}
			return n, fmt.Errorf("seeding %s: %d of copies_min %d copies (%s): %w", root, n, pl.min, why, ErrBelowMin)
		case <-pl2.changed:
		case <-t.C:
		case <-ctx.Done():
			return report(), fmt.Errorf("seeding %s: %w", root, ctx.Err())
		}
	}
}
