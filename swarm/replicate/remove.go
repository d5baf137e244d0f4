package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// Removal (docs/REPLICATION.md "Removal"): signed records, spread to every
// member and applied.

// ErrBadRemoval is returned for a removal record that is not signed by a
// member of the swarm.
var ErrBadRemoval = errors.New("swarm: removal record not signed by a member")

// sign makes a record of root signed with this host's peer key: a
// removal, a restore, or (successor defined) a removal saying that root's
// bytes now live as successor (a re-coding, recode.go).
func (r *Replicator) sign(root cid.Cid, restore bool, successor cid.Cid) (*proto.Removal, error) {
	key := r.host.Peerstore().PrivKey(r.host.ID())
	if key == nil {
		return nil, fmt.Errorf("signing the removal of %s: no private key for this host", root)
	}
	rec := &proto.Removal{Root: root, Issuer: []byte(r.host.ID()), Time: time.Now().UnixNano(), Restore: restore, Successor: successor}
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
	r.dirty = true
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
// the record (offline ones when they come back). A root re-coded since
// (successor records, recode.go) is removed with every successor in its
// chain, so that removing the root git-annex knows removes the bytes.
// Without a swarm it only deletes the local copy.
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
	// A root whose winning record is a removal already (one re-coded,
	// whose record names its successor) keeps that record: it stays a
	// pointer to the successor, which a later put may restore.
	var recs []*proto.Removal
	var roots []cid.Cid
	for _, c := range r.chain(root) {
		if c != root && r.tombs.removed(c) {
			continue
		}
		var next cid.Cid
		if c == root {
			next, _ = r.tombs.successor(root)
		}
		rec, err := r.sign(c, false, next)
		if err != nil {
			return err
		}
		if r.tombs.put(rec) {
			recs, roots = append(recs, rec), append(roots, c)
		}
	}
	if len(recs) == 0 {
		return nil // newer records of the chain are held already
	}
	err := r.keepAndSpread(ctx, pl, recs, func() {
		for _, c := range roots {
			r.dropRemoved(ctx, c)
		}
	})
	if err != nil {
		return fmt.Errorf("removing %s: %w", root, err)
	}
	return nil
}

// keepAndSpread makes recs (already in tombs) durable here while the
// connected members of pl get them, and then, once they are durable, runs
// applied (nil: nothing to apply). A crash in between leaves the records'
// effects undone and no record, never an effect this member forgot; a
// record a member got that this member lost comes back from the member.
func (r *Replicator) keepAndSpread(ctx context.Context, pl policy, recs []*proto.Removal, applied func()) error {
	var local sync.WaitGroup
	var err error
	local.Go(func() {
		if err = r.persist(recs); err == nil && applied != nil {
			applied()
		}
	})
	r.spreadRemovals(ctx, pl)
	local.Wait()
	return err
}

// restoreRecord makes and keeps (in tombs, not yet durably) a Restore
// record cancelling an earlier removal of root (a new put of it); nil when
// root's newest record is not a removal.
func (r *Replicator) restoreRecord(root cid.Cid) (*proto.Removal, error) {
	if !r.tombs.removed(root) {
		return nil, nil
	}
	rec, err := r.sign(root, true, cid.Undef)
	if err != nil {
		return nil, err
	}
	if !r.tombs.put(rec) {
		return nil, nil
	}
	return rec, nil
}

// keepCarried keeps the Restore record a PlaceRequest carries
// (docs/REPLICATION.md "Restore carried in the placement"): verified and
// kept in tombs now, so that the placement is not refused as removed, and
// made durable in the background; the channel gives the result, which the
// responder waits for before it answers Done. The record is made durable
// even when tombs held it already: the copy that put it there may still be
// on its way to the disk (a record file holding it twice is read the same).
func (r *Replicator) keepCarried(pl policy, rec *proto.Removal) (<-chan error, error) {
	if err := verifyRemoval(pl, rec); err != nil {
		return nil, err
	}
	r.tombs.put(rec)
	return r.persistAsync(rec), nil
}

// persistAsync makes rec durable in the background; the channel gives the
// result.
func (r *Replicator) persistAsync(rec *proto.Removal) <-chan error {
	kept := make(chan error, 1)
	go func() { kept <- r.persist([]*proto.Removal{rec}) }()
	return kept
}

// spreadRemovals hands every connected member the records it was not sent.
func (r *Replicator) spreadRemovals(ctx context.Context, pl policy) {
	var wg sync.WaitGroup
	for _, m := range pl.def.Members {
		p := peer.ID(m.Peer)
		if p == pl.self || !r.connected(p) {
			continue
		}
		recs, upto := r.tombs.unsent(p)
		if len(recs) == 0 {
			continue
		}
		wg.Go(func() {
			if err := r.sendRemovals(ctx, p, recs); err != nil {
				r.log.Debug("sending removal records", "peer", p, "err", err)
				return
			}
			r.tombs.markSent(p, upto)
		})
	}
	wg.Wait()
}

// removalsTimeout bounds sending removal records to one member.
const removalsTimeout = 5 * time.Second

// sendRemovals sends recs to p on one replication stream, then Bye, and
// waits for p to close the stream (it has stored them).
func (r *Replicator) sendRemovals(ctx context.Context, p peer.ID, recs []*proto.Removal) error {
	ctx, cancel := context.WithTimeout(ctx, removalsTimeout)
	defer cancel()
	s, release, err := p2pstream.Open(ctx, r.host, p, r.slot.Get(), removalsTimeout)
	if err != nil {
		return err
	}
	defer release()
	_ = s.SetDeadline(time.Now().Add(removalsTimeout))
	c := proto.NewCodec(s)
	for _, rec := range recs {
		if err := c.Send(rec); err != nil {
			s.Reset()
			return err
		}
	}
	if err := p2pstream.Send(c, &proto.Bye{}); err != nil {
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
func (r *Replicator) receiveRemovals(ctx context.Context, s network.Stream, c *proto.Codec, from peer.ID, first *proto.Removal) error {
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
				if rec.Successor.Defined() {
					r.shedRecoded(ctx, rec.Successor)
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
