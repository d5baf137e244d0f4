package replicate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Re-coding (docs/ERASURE.md "Re-coding"): rules that change the scheme
// (erasure on, off, another k+m, another min_size) leave the contents
// stored before with their old layout. A content whose layout differs
// from what the current rules want for its size is put again, under the
// current rules, by one member: the first live holder in rendezvous order
// on its root, as for repair (actsFor). Its new root is a new content;
// once that put succeeded, a removal record of the old root naming the new
// one as its successor makes the old holders delete the old layout, and
// lets get, where and rm follow the old root (resolve.go).
//
// The repair round's checks note the contents due (recodeBook): a check
// comes with new rules (every content is checked again then), a content's
// first check, and its recheck turn, so no round surveys anything for
// re-coding. One worker re-codes one content at a time; a failed one is
// tried again with backoff.

// Bounds of re-coding.
const (
	// recodeBackoffMax bounds the wait before a failed re-coding is tried
	// again; the wait doubles from 4 repair intervals up to it.
	recodeBackoffMax = time.Hour
	// recodeSettle bounds how long the acting member waits for the other
	// members to hold every shard set of a coded successor before it
	// drops its own whole copy of it; past it the copy stays (it counts
	// as one set).
	recodeSettle = 2 * time.Minute
	// recodePoll is the period of that wait's surveys.
	recodePoll = 2 * time.Second
)

// recodeBook is the contents this member is the one to re-code. The zero
// value is not ready: New makes it.
type recodeBook struct {
	mu      sync.Mutex
	due     map[string]*recodeDue // root → its entry
	poke    chan struct{}         // a content was noted
	recoded uint64                // contents re-coded from here since start
}

// recodeDue is one content due for re-coding.
type recodeDue struct {
	root  cid.Cid
	after time.Time // not tried before (backoff after a failure)
	fails int
}

// wantsRecode reports whether the layout of m differs from what the rules
// of pl want for a content of its size: replicated but to be coded, coded
// with another k+m, or coded but to be replicated (no scheme, or smaller
// than min_size).
func wantsRecode(pl policy, m *chunk.Manifest) bool {
	rep := pl.def.Replication
	switch {
	case !rep.Coded(m.Size):
		return m.Coded()
	case !m.Coded():
		return true
	default:
		return m.Layout.K != rep.Erasure.Data || m.Layout.M != rep.Erasure.Parity
	}
}

// noteRecode records whether this member is to re-code root (manifest m,
// which may be nil when acts is false):
// acts says it is the member to act for root, its put having succeeded
// (the check saw the put's threshold reached and nothing in flight).
func (r *Replicator) noteRecode(pl policy, root cid.Cid, m *chunk.Manifest, acts bool) {
	if r.put == nil {
		return
	}
	b := &r.recodes
	k := root.KeyString()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !acts || !pl.storage || !wantsRecode(pl, m) {
		delete(b.due, k)
		return
	}
	if _, ok := b.due[k]; ok {
		return // keeps its backoff
	}
	b.due[k] = &recodeDue{root: root}
	poke(b.poke)
}

// Recoded returns how many contents this member has re-coded (issued a
// successor record for) since it started.
func (r *Replicator) Recoded() uint64 {
	r.recodes.mu.Lock()
	defer r.recodes.mu.Unlock()
	return r.recodes.recoded
}

// nextRecode returns the entry due longest whose backoff has passed, or nil.
func (r *Replicator) nextRecode(now time.Time) *recodeDue {
	b := &r.recodes
	b.mu.Lock()
	defer b.mu.Unlock()
	var best *recodeDue
	for _, d := range b.due {
		if !d.after.After(now) && (best == nil || d.after.Before(best.after)) {
			best = d
		}
	}
	return best
}

// recodeWorker re-codes the contents noted, one at a time, until ctx
// ends: at most one re-coding runs from a member. It waits while a put is
// in flight here (the content being put may be one it would re-code).
func (r *Replicator) recodeWorker(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.recodes.poke:
		}
		for ctx.Err() == nil && r.puts.Load() == 0 {
			d := r.nextRecode(time.Now())
			if d == nil {
				break
			}
			_, err := r.recode(ctx, d.root)
			r.recodeEnded(ctx, d, err)
		}
	}
}

// recodeEnded takes d out of the book after a re-coding that ended, or
// sets its backoff after a failure, with one log line.
func (r *Replicator) recodeEnded(ctx context.Context, d *recodeDue, err error) {
	b := &r.recodes
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		if b.due[d.root.KeyString()] == d {
			delete(b.due, d.root.KeyString())
		}
		return
	}
	if ctx.Err() != nil {
		return // stopping: tried again after the restart, when noted again
	}
	d.fails++
	wait := min(4*r.every<<min(d.fails-1, 20), recodeBackoffMax)
	d.after = time.Now().Add(wait)
	r.log.Info("re-coding failed; trying again later", "cid", d.root, "fails", d.fails, "retry_in", wait, "err", err)
}

// recode puts the content root again under the current rules and, once
// that put succeeded, issues the successor record root → its new root.
// It returns the new root, or cid.Undef when nothing was due any more
// (root removed, no longer held here, already in the wanted layout).
func (r *Replicator) recode(ctx context.Context, root cid.Cid) (cid.Cid, error) {
	pl, ok := r.currentPolicy()
	if !ok || !pl.storage || r.tombs.removed(root) {
		return cid.Undef, nil
	}
	m, err := r.store.Manifest(ctx, root)
	if errors.Is(err, chunk.ErrNotFound) {
		return cid.Undef, nil
	}
	if err != nil {
		return cid.Undef, fmt.Errorf("re-coding %s: %w", root, err)
	}
	if !wantsRecode(pl, m) {
		return cid.Undef, nil
	}
	src, closeSrc, err := r.recodeSource(ctx, root, m)
	if err != nil {
		return cid.Undef, fmt.Errorf("re-coding %s: %w", root, err)
	}
	next, err := r.put(ctx, src, m.Size, m.Key)
	closeSrc()
	if err != nil {
		return cid.Undef, fmt.Errorf("re-coding %s: putting it again: %w", root, err)
	}
	if next == root {
		return cid.Undef, nil // the rules changed back meanwhile
	}
	rec, err := r.sign(root, false, next)
	if err != nil {
		return cid.Undef, fmt.Errorf("re-coding %s: %w", root, err)
	}
	if _, err := r.accept(ctx, rec); err != nil {
		return cid.Undef, fmt.Errorf("re-coding %s: storing its successor record: %w", root, err)
	}
	r.recodes.mu.Lock()
	r.recodes.recoded++
	r.recodes.mu.Unlock()
	r.spreadRemovals(ctx, pl)
	nm, _ := r.store.Manifest(ctx, next)
	layout := "replicated"
	if nm != nil && nm.Coded() {
		layout = fmt.Sprintf("erasure %d+%d", nm.Layout.K, nm.Layout.M)
	}
	r.log.Info("content re-coded", "cid", root, "successor", next, "layout", layout, "size", m.Size)
	if nm != nil {
		r.dropWholeAfterRecode(ctx, pl, next, nm)
	}
	return next, nil
}

// recodeSource returns the bytes of root: read from the store when it is
// held here whole, else fetched (decoded, for a coded content) into a
// temporary file; closeSrc releases them.
func (r *Replicator) recodeSource(ctx context.Context, root cid.Cid, m *chunk.Manifest) (src io.Reader, closeSrc func(), err error) {
	if r.complete(ctx, root) {
		pr, pw := io.Pipe()
		go func() {
			_, err := r.store.WriteTo(ctx, root, pw)
			pw.CloseWithError(err)
		}()
		return pr, func() { pr.CloseWithError(errors.New("re-coding ended")) }, nil
	}
	f, err := os.CreateTemp(r.tempDir, ".recode-*")
	if err != nil {
		return nil, nil, fmt.Errorf("creating a temporary file: %w", err)
	}
	drop := func() {
		f.Close()
		os.Remove(f.Name())
	}
	if _, err := r.x.FetchInto(ctx, root, f, nil); err != nil {
		drop()
		return nil, nil, fmt.Errorf("fetching it whole: %w", err)
	}
	return io.NewSectionReader(f, 0, m.Size), drop, nil
}

// dropWholeAfterRecode drops this member's whole copy of the coded
// successor next (manifest m) once the other members hold every shard set of it
// (within recodeSettle): the put that made next kept the whole content
// here as an uploader does, which a re-coding does not want (the point of
// coding is to store n/k × the content). A replicated successor stays: it
// is one of its copies.
func (r *Replicator) dropWholeAfterRecode(ctx context.Context, pl policy, next cid.Cid, m *chunk.Manifest) {
	if !m.Coded() || !r.complete(ctx, next) {
		return
	}
	full := uint32(1)<<(m.Layout.K+m.Layout.M) - 1
	deadline := time.Now().Add(recodeSettle)
	for {
		var covered uint32
		for _, mask := range r.surveySets(ctx, pl, next) {
			if mask&full != full {
				covered |= mask
			}
		}
		if covered&full == full {
			if err := r.store.Remove(ctx, next); err != nil && !errors.Is(err, chunk.ErrNotFound) {
				r.log.Warn("dropping the whole copy of a re-coded content", "cid", next, "err", err)
				return
			}
			r.log.Info("whole copy of a re-coded content dropped; every shard set is held elsewhere", "cid", next)
			return
		}
		if time.Now().After(deadline) {
			r.log.Info("whole copy of a re-coded content kept: not every shard set is held elsewhere", "cid", next, "held", covered)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(recodePoll):
		}
	}
}

// shedRecoded drops the whole chunks of next, the coded successor of a
// content removed here, that only next's manifest keeps: a member that
// held the old root whole and holds a shard set of next now keeps only its
// set, as every other set holder does (chunk.Store.ShedChunks). The
// acting member, whose whole copy serves the placement of the remaining
// sets, never gets here: its own record is not received, and it drops its
// copy itself (dropWholeAfterRecode).
func (r *Replicator) shedRecoded(ctx context.Context, next cid.Cid) {
	n, err := r.store.ShedChunks(ctx, next)
	switch {
	case err == nil && n > 0:
		r.log.Info("whole chunks of a re-coded content dropped; its shard set stays", "cid", next, "chunks", n)
	case err != nil && !errors.Is(err, chunk.ErrNotFound) && !errors.Is(err, chunk.ErrBadManifest):
		r.log.Warn("dropping the whole chunks of a re-coded content", "cid", next, "err", err)
	}
}
