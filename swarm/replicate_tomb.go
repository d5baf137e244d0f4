package swarm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
)

// Removal records (docs/REPLICATION.md "Removal"): `rm` makes a record
// signed with this member's peer key; every member keeps the newest record of each root (durably, bounded), deletes
// content whose newest record is a removal, refuses to place it, and hands
// its records to every member it is connected to. A later put makes a
// Restore record, which wins by its later time.

// MaxRemovals bounds the records kept; past it the oldest Restore records
// go first, then the oldest removals.
const MaxRemovals = 4096

// ErrBadRemoval is returned for a removal record that is not signed by a
// member of the swarm.
var ErrBadRemoval = errors.New("swarm: removal record not signed by a member")

// removals holds the newest record of each root and what was sent to whom.
type removals struct {
	mu   sync.Mutex
	recs map[string]*proto.Removal
	sent map[peer.ID]map[string]int64 // peer → root → time of the record it has
}

func newRemovals() *removals {
	return &removals{recs: map[string]*proto.Removal{}, sent: map[peer.ID]map[string]int64{}}
}

func (t *removals) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.recs {
		if !r.Restore {
			n++
		}
	}
	return n
}

// removed reports whether the newest record of root is a removal.
func (t *removals) removed(root cid.Cid) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.recs[root.KeyString()]
	return r != nil && !r.Restore
}

// put keeps rec if it is newer than the record held for its root, and
// reports whether it did.
func (t *removals) put(rec *proto.Removal) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := rec.Root.KeyString()
	if old := t.recs[k]; old != nil && old.Time >= rec.Time {
		return false
	}
	t.recs[k] = rec
	if len(t.recs) > MaxRemovals {
		all := make([]*proto.Removal, 0, len(t.recs))
		for _, r := range t.recs {
			all = append(all, r)
		}
		slices.SortFunc(all, func(a, b *proto.Removal) int {
			if a.Restore != b.Restore {
				if a.Restore {
					return -1
				}
				return 1
			}
			return int(min(max(a.Time-b.Time, -1), 1))
		})
		for _, r := range all[:len(all)-MaxRemovals] {
			delete(t.recs, r.Root.KeyString())
		}
	}
	return true
}

// unsent returns the records p has not been sent.
func (t *removals) unsent(p peer.ID) []*proto.Removal {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*proto.Removal
	for k, r := range t.recs {
		if t.sent[p][k] != r.Time {
			out = append(out, r)
		}
	}
	return out
}

// markSent records that p has recs.
func (t *removals) markSent(p peer.ID, recs []*proto.Removal) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent[p] == nil {
		t.sent[p] = map[string]int64{}
	}
	for _, r := range recs {
		t.sent[p][r.Root.KeyString()] = r.Time
	}
}

// all returns the records held, oldest first.
func (t *removals) all() []*proto.Removal {
	t.mu.Lock()
	all := make([]*proto.Removal, 0, len(t.recs))
	for _, r := range t.recs {
		all = append(all, r)
	}
	t.mu.Unlock()
	slices.SortFunc(all, func(a, b *proto.Removal) int { return int(min(max(a.Time-b.Time, -1), 1)) })
	return all
}

// encodeRemovals returns recs as frames of the records file
// (docs/REPLICATION.md "Removal records file").
func encodeRemovals(recs []*proto.Removal) ([]byte, error) {
	var buf bytes.Buffer
	fw := proto.NewFrameWriter(&buf, proto.FrameOverhead)
	for _, r := range recs {
		body, err := proto.EncodeMsg(r)
		if err != nil {
			return nil, fmt.Errorf("encoding removal of %s: %w", r.Root, err)
		}
		if err := fw.WriteFrame(body); err != nil {
			return nil, err
		}
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// MaxRemovalFrames bounds the frames of the removal records file: records
// are appended as they come and the file is rewritten with the records
// held (at most MaxRemovals) before it would grow past this.
const MaxRemovalFrames = 2 * MaxRemovals

// DecodeRemovals parses a removal records file: at most MaxRemovalFrames
// frames, each one Removal message. On error it also returns the records
// read before the bad frame (a torn append leaves its last frame short).
func DecodeRemovals(b []byte) ([]*proto.Removal, error) {
	fr := proto.NewFrameReader(bytes.NewReader(b), proto.FrameOverhead)
	var out []*proto.Removal
	for {
		body, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("reading removal record %d: %w", len(out), err)
		}
		if len(out) == MaxRemovalFrames {
			return out, fmt.Errorf("reading removal records: more than %d", MaxRemovalFrames)
		}
		m, err := proto.DecodeMsg(body)
		if err != nil {
			return out, fmt.Errorf("reading removal record %d: %w", len(out), err)
		}
		rec, ok := m.(*proto.Removal)
		if !ok {
			return out, fmt.Errorf("reading removal record %d: a %s: %w", len(out), m.Type(), proto.ErrInvalid)
		}
		out = append(out, rec)
	}
}

// loadRemovals reads the durable records at start. A damaged file (a torn
// last append) keeps the records before the damage and is rewritten.
func (r *Replicator) loadRemovals() {
	if r.load == nil {
		return
	}
	b, err := r.load()
	if err != nil {
		r.log.Warn("reading removal records", "err", err)
		return
	}
	recs, err := DecodeRemovals(b)
	for _, rec := range recs {
		r.tombs.put(rec)
	}
	r.logMu.Lock()
	r.logged = len(recs)
	r.logMu.Unlock()
	if err != nil {
		r.log.Warn("reading removal records; keeping those before the damage", "kept", len(recs), "err", err)
		if err := r.persist(nil); err != nil {
			r.log.Warn("rewriting removal records", "err", err)
		}
	}
}

// persist makes recs (just kept in r.tombs) durable: appended to the
// records file, or, when that would take the file past MaxRemovalFrames
// (or recs is nil), by rewriting it with every record held.
func (r *Replicator) persist(recs []*proto.Removal) error {
	if r.save == nil {
		return nil
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if recs != nil && r.appendR != nil && r.logged+len(recs) <= MaxRemovalFrames {
		b, err := encodeRemovals(recs)
		if err != nil {
			return err
		}
		if err := r.appendR(b); err != nil {
			return fmt.Errorf("storing removal records: %w", err)
		}
		r.logged += len(recs)
		return nil
	}
	all := r.tombs.all()
	b, err := encodeRemovals(all)
	if err != nil {
		return err
	}
	if err := r.save(b); err != nil {
		return fmt.Errorf("storing removal records: %w", err)
	}
	r.logged = len(all)
	return nil
}

// sign makes a record of root signed with this host's peer key.
func (r *Replicator) sign(root cid.Cid, restore bool) (*proto.Removal, error) {
	key := r.host.Peerstore().PrivKey(r.host.ID())
	if key == nil {
		return nil, fmt.Errorf("signing the removal of %s: no private key for this host", root)
	}
	rec := &proto.Removal{Root: root, Issuer: []byte(r.host.ID()), Time: time.Now().UnixNano(), Restore: restore}
	sig, err := key.Sign(rec.SigningBytes())
	if err != nil {
		return nil, fmt.Errorf("signing the removal of %s: %w", root, err)
	}
	rec.Sig = sig
	return rec, nil
}

// verify checks that rec is signed by a member of the swarm.
func verifyRemoval(pl policy, rec *proto.Removal) error {
	issuer, err := peer.IDFromBytes(rec.Issuer)
	if err != nil {
		return fmt.Errorf("%w: issuer: %v", ErrBadRemoval, err)
	}
	if _, ok := pl.def.Member(rules.PeerID(issuer)); !ok {
		return fmt.Errorf("%w: %s is not a member", ErrBadRemoval, issuer)
	}
	pub, err := issuer.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: key of %s: %v", ErrBadRemoval, issuer, err)
	}
	ok, err := pub.Verify(rec.SigningBytes(), rec.Sig)
	if err != nil || !ok {
		return fmt.Errorf("%w: bad signature by %s", ErrBadRemoval, issuer)
	}
	return nil
}

// accept keeps a verified record if newer, persists it and applies it.
func (r *Replicator) accept(ctx context.Context, rec *proto.Removal) (bool, error) {
	if !r.tombs.put(rec) {
		return false, nil
	}
	if err := r.persist([]*proto.Removal{rec}); err != nil {
		return true, err
	}
	if !rec.Restore {
		r.dropRemoved(ctx, rec.Root)
	}
	return true, nil
}

// dropRemoved deletes removed content held here.
func (r *Replicator) dropRemoved(ctx context.Context, root cid.Cid) {
	r.mu.Lock()
	delete(r.known, root.KeyString())
	r.mu.Unlock()
	err := r.store.Remove(ctx, root)
	switch {
	case err == nil:
		r.log.Info("removed content deleted", "cid", root)
	case !errors.Is(err, chunk.ErrNotFound):
		r.log.Warn("deleting removed content", "cid", root, "err", err)
	}
}

// Remove removes root from every member: a signed removal record is kept
// and spread, and the content is deleted here and by every member that gets
// the record (offline ones when they come back). Without a swarm it only
// deletes the local copy.
func (r *Replicator) Remove(ctx context.Context, root cid.Cid) error {
	if err := isManifest(root); err != nil {
		return fmt.Errorf("removing: %w", err)
	}
	pl, ok := r.currentPolicy()
	if !ok {
		if err := r.store.Remove(ctx, root); err != nil {
			return fmt.Errorf("removing %s: %w", root, err)
		}
		return nil
	}
	rec, err := r.sign(root, false)
	if err != nil {
		return err
	}
	if !r.tombs.put(rec) {
		return nil // a newer record of root is held already
	}
	if err := r.persist([]*proto.Removal{rec}); err != nil {
		return fmt.Errorf("removing %s: %w", root, err)
	}
	// The local copy goes while the members get the record.
	var drop sync.WaitGroup
	drop.Go(func() { r.dropRemoved(ctx, root) })
	r.spreadRemovals(ctx, pl)
	drop.Wait()
	return nil
}

// restore cancels an earlier removal of root (a new put of it).
func (r *Replicator) restore(ctx context.Context, root cid.Cid) error {
	if !r.tombs.removed(root) {
		return nil
	}
	rec, err := r.sign(root, true)
	if err != nil {
		return err
	}
	if _, err := r.accept(ctx, rec); err != nil {
		return err
	}
	if pl, ok := r.currentPolicy(); ok {
		r.spreadRemovals(ctx, pl)
	}
	return nil
}

// spreadRemovals hands every connected member the records it was not sent.
func (r *Replicator) spreadRemovals(ctx context.Context, pl policy) {
	var wg sync.WaitGroup
	for _, p := range peersOf(pl.def) {
		if p == pl.self || !r.connected(p) {
			continue
		}
		recs := r.tombs.unsent(p)
		if len(recs) == 0 {
			continue
		}
		wg.Go(func() {
			if err := r.sendRemovals(ctx, p, recs); err != nil {
				r.log.Debug("sending removal records", "peer", p, "err", err)
				return
			}
			r.tombs.markSent(p, recs)
		})
	}
	wg.Wait()
}

// sendRemovals sends recs to p on one replication stream, then Bye, and
// waits for p to close the stream (it has stored them).
func (r *Replicator) sendRemovals(ctx context.Context, p peer.ID, recs []*proto.Removal) error {
	pid := r.slot.get()
	if pid == "" {
		return ErrNoSwarm
	}
	ctx, cancel := context.WithTimeout(ctx, surveyTimeout)
	defer cancel()
	s, err := r.host.NewStream(ctx, p, pid)
	if err != nil {
		return fmt.Errorf("opening replication stream to %s: %w", p, err)
	}
	_ = s.SetDeadline(time.Now().Add(surveyTimeout))
	c := proto.NewCodec(s)
	for _, rec := range recs {
		if err := c.Send(rec); err != nil {
			s.Reset()
			return err
		}
	}
	if err := send(c, &proto.Bye{}); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return err
	}
	if _, err := c.Recv(); !errors.Is(err, io.EOF) {
		s.Reset()
		return fmt.Errorf("waiting for %s to store removal records: %v", p, err)
	}
	return s.Close()
}

// receiveRemovals stores the records a member sends, first included, until
// its Bye: the new ones are made durable together (one append), then
// applied.
func (r *Replicator) receiveRemovals(s network.Stream, c *proto.Codec, from peer.ID, first *proto.Removal) error {
	ctx := r.background()
	pl, ok := r.currentPolicy()
	if !ok {
		return ErrNoSwarm
	}
	var kept []*proto.Removal
	msg := proto.Msg(first)
	for range MaxRemovals + 1 {
		switch m := msg.(type) {
		case *proto.Removal:
			if err := verifyRemoval(pl, m); err != nil {
				r.log.Warn("removal record refused", "from", from, "cid", m.Root, "err", err)
			} else if r.tombs.put(m) {
				kept = append(kept, m)
			}
		case *proto.Bye:
			if len(kept) == 0 {
				return nil
			}
			if err := r.persist(kept); err != nil {
				return err
			}
			for _, rec := range kept {
				if !rec.Restore {
					r.dropRemoved(ctx, rec.Root)
				}
			}
			return nil
		default:
			return fmt.Errorf("%s in a removal stream: %w", msg.Type(), proto.ErrInvalid)
		}
		_ = s.SetReadDeadline(time.Now().Add(placeIdle))
		var err error
		if msg, err = c.Recv(); err != nil {
			return err
		}
	}
	return fmt.Errorf("more than %d removal records in one stream: %w", MaxRemovals, proto.ErrInvalid)
}
