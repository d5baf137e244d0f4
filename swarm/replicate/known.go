package replicate

import (
	"time"

	"github.com/ipfs/go-cid"
)

// Keeping the repair state (docs/REPLICATION.md "Repair state file"): the
// known states are read at start and written back, whole and atomically,
// at most every saveEvery while they change, and when Run ends. A crash
// loses at most the changes since the last save: those contents are
// checked again as if new (surveyed, with grace), which is what a restart
// did before the state was kept.

// saveEvery bounds how often the repair state file is rewritten.
const saveEvery = 30 * time.Second

// loadKnown reads the repair state file into the known states. A missing
// file starts empty; a damaged one is ignored with a warning (everything
// is then surveyed once, as on a first start).
func (r *Replicator) loadKnown() {
	if r.loadState == nil {
		return
	}
	b, err := r.loadState()
	if err != nil {
		r.log.Warn("reading the repair state; every content will be surveyed", "err", err)
		return
	}
	if len(b) == 0 {
		return
	}
	ver, known, err := DecodeRepairState(b)
	if err != nil {
		r.log.Warn("repair state file damaged; every content will be surveyed", "err", err)
		return
	}
	r.mu.Lock()
	r.known, r.rulesVer = known, ver
	r.savedAt = time.Now()
	r.mu.Unlock()
	r.log.Info("repair state loaded", "contents", len(known), "rules_version", ver)
}

// saveKnown writes the known states when they changed and the last save
// is saveEvery old (or force). With roots not nil (the contents held, as
// listed by this round), states of contents no longer held are dropped
// first.
func (r *Replicator) saveKnown(roots []cid.Cid, force bool) {
	if r.saveState == nil {
		return
	}
	r.mu.Lock()
	if !r.dirty || (!force && time.Since(r.savedAt) < saveEvery) {
		r.mu.Unlock()
		return
	}
	if roots != nil {
		held := make(map[string]struct{}, len(roots))
		for _, root := range roots {
			held[root.KeyString()] = struct{}{}
		}
		for k := range r.known {
			if _, ok := held[k]; !ok {
				delete(r.known, k)
			}
		}
	}
	b := encodeKnown(r.rulesVer, r.known)
	r.dirty, r.savedAt = false, time.Now()
	n := len(r.known)
	r.mu.Unlock()
	if err := r.saveState(b); err != nil {
		r.mu.Lock()
		r.dirty = true
		r.mu.Unlock()
		r.log.Warn("writing the repair state", "err", err)
		return
	}
	r.log.Debug("repair state saved", "contents", n, "bytes", len(b))
}
