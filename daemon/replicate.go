package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
)

// maxRemovalsFile bounds the removal records file read at start (records
// are at most a few hundred bytes each).
const maxRemovalsFile = replicate.MaxRemovalFrames * 1024

// removalsPath is the durable removal records file
// (docs/REPLICATION.md "Removal records file").
func (d *Daemon) removalsPath() string { return filepath.Join(d.home.Dir, "removals") }

// repairStatePath is the repair state file (docs/REPLICATION.md "Repair
// state file").
func (d *Daemon) repairStatePath() string { return filepath.Join(d.home.Dir, "repair") }

// newReplicator wires the replication engine to the store, the exchange,
// the membership and the home.
func (d *Daemon) newReplicator(interval time.Duration) *replicate.Replicator {
	return replicate.New(replicate.Options{
		Host: d.host, Store: d.store, Exchange: d.xchg, Members: d.members,
		Logger: d.log, Interval: interval,
		LoadRemovals: func() ([]byte, error) {
			b, err := readBounded(d.removalsPath(), maxRemovalsFile)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return b, err
		},
		SaveRemovals:   func(b []byte) error { return WriteFileAtomic(d.removalsPath(), b, 0o600) },
		AppendRemovals: func(b []byte) error { return appendFileSynced(d.removalsPath(), b, 0o600) },
		LoadRepairState: func() ([]byte, error) {
			b, err := readBounded(d.repairStatePath(), replicate.MaxRepairStateFile)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, nil
			}
			return b, err
		},
		SaveRepairState: func(b []byte) error { return WriteFileAtomic(d.repairStatePath(), b, 0o600) },
		Put:             d.recodePut,
		TempDir:         d.home.Dir,
	})
}

// recodePut is the replicator's put of a content being re-coded
// (docs/ERASURE.md "Re-coding"): the put path of this member, counted as
// a put in flight.
func (d *Daemon) recodePut(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, error) {
	defer d.repl.BeginPut()()
	res, err := d.putContent(ctx, r, size, key, nil)
	if err != nil {
		return cid.Undef, err
	}
	return chunk.ParseCID(res.CID)
}

// followReplication points the replicator at the adopted swarm.
func (d *Daemon) followReplication(def *rules.Definition) {
	if def == nil || def.ID.IsZero() {
		d.repl.SetSwarm("")
		return
	}
	d.repl.SetSwarm(def.ID.String())
}

// seed replicates a content just put until copies_min storage members hold
// it, reporting the holders' progress; without a swarm it does nothing.
func (d *Daemon) seed(ctx context.Context, root cid.Cid, progress func(client.Progress)) (int, error) {
	return d.seedWith(ctx, progress, func(ctx context.Context, report func(replicate.SeedProgress)) (int, error) {
		return d.repl.Seed(ctx, root, report)
	})
}

// seedWith runs a seeding (Seed or SeedStoring) with progress reported as
// put reports it; without a swarm it does nothing.
func (d *Daemon) seedWith(ctx context.Context, progress func(client.Progress), run func(context.Context, func(replicate.SeedProgress)) (int, error)) (int, error) {
	def := d.members.Current()
	if def == nil {
		return 0, nil
	}
	k := max(def.Replication.CopiesMin, 1)
	return run(ctx, func(p replicate.SeedProgress) {
		if progress == nil {
			return
		}
		// Put waits for the copies_min-th most advanced new holder.
		held := make([]int64, 0, len(p.Holders))
		for _, n := range p.Holders {
			held = append(held, n)
		}
		slices.Sort(held)
		var n int64
		if len(held) > 0 {
			n = held[max(len(held)-k, 0)]
		}
		progress(client.Progress{Bytes: n, Total: p.Total, Sources: p.Holders})
	})
}

func (d *Daemon) handleWhere(w http.ResponseWriter, r *http.Request) {
	var req client.WhereRequest
	if !readJSON(w, r, &req) {
		return
	}
	asked, err := chunk.ParseCID(req.CID)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("where: %w", err))
		return
	}
	// A re-coded root is answered for its successor, which the answer
	// names (docs/ERASURE.md "Re-coding").
	root := d.repl.Resolve(asked)
	resolved := ""
	if root != asked {
		resolved = root.String()
	}
	if ch, coded, err := d.repl.WhereCoded(r.Context(), root); err == nil && coded {
		out := d.codedWhere(ch)
		out.CID, out.Resolved = asked.String(), resolved
		writeJSON(w, http.StatusOK, out)
		return
	}
	h, ok := replicate.Holders{}, false
	if req.Cached {
		h, ok = d.repl.KnownHolders(root)
	}
	if !ok {
		h, err = d.repl.Where(r.Context(), root)
	}
	if err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, replicate.ErrNoSwarm) {
			status = http.StatusBadRequest
		}
		writeError(w, status, fmt.Errorf("where: %w", err))
		return
	}
	out := client.WhereResult{CID: asked.String(), Resolved: resolved, Holders: []client.Holder{}, Copies: len(h.Holders), Target: h.Target,
		CopiesMin: h.Min, Unreachable: h.Unreachable}
	def := d.members.Current()
	for _, p := range h.Holders {
		name := ""
		if def != nil {
			if m, ok := def.Member(rules.PeerID(p)); ok {
				name = m.Name
			}
		}
		out.Holders = append(out.Holders, client.Holder{PeerID: p.String(), Name: name})
	}
	writeJSON(w, http.StatusOK, out)
}

// replicationStatus is the status's replication summary; nil outside a swarm.
func (d *Daemon) replicationStatus() *client.ReplicationStatus {
	if d.members.Current() == nil {
		return nil
	}
	s := d.repl.Summary()
	out := &client.ReplicationStatus{
		Contents: s.Contents, AtTarget: s.AtTarget, BelowTarget: s.BelowTarget, BelowMin: s.BelowMin,
		InRepair: s.InRepair, NoRoom: s.NoRoom, Removed: s.Removed, Coded: s.Coded,
		Unknown: s.Unknown, Checked: s.Checked, Queued: s.Queued, Placing: s.Placing, Placements: s.Placements,
		Full: d.repl.FullMembers(),
	}
	if len(s.Survives) > 0 {
		out.Survives = map[string]int{}
		for k, n := range s.Survives {
			out.Survives[strconv.Itoa(k)] = n
		}
	}
	if !s.LastRound.IsZero() {
		out.LastRound = s.LastRound.UTC().Format(time.RFC3339)
	}
	switch {
	case s.NoRoom > 0:
		out.Problem = fmt.Sprintf("no storage member has room for %d content(s)", s.NoRoom)
	case len(out.Full) > 0:
		out.Problem = fmt.Sprintf("out of room: %s", strings.Join(out.Full, ", "))
	}
	return out
}

// drain hands this member's copies to others before it leaves.
func (d *Daemon) drain(ctx context.Context) error {
	return d.repl.Drain(ctx)
}
