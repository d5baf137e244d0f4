package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
)

// persistRules stores an adopted definition in the home before it takes
// effect, so a restart comes back in the same swarm at the same version.
func (d *Daemon) persistRules(def *rules.Definition) error {
	return WriteFileAtomic(d.home.RulesPath(), def.Signed(), 0o600)
}

// restoreRules adopts the definition stored in the home, if any.
func (d *Daemon) restoreRules(ctx context.Context) error {
	b, err := readBounded(d.home.RulesPath(), rules.MaxDocumentSize)
	if errors.Is(err, fs.ErrNotExist) {
		d.log.Info("no swarm joined yet; talking to no one (annex-swarm join RULES)")
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the adopted definition: %w", err)
	}
	if _, err := d.members.Restore(ctx, b); err != nil {
		return fmt.Errorf("%s: %w", d.home.RulesPath(), err)
	}
	return nil
}

// follow makes the daemon follow the adopted definition, or none (nil,
// after leave): the limits first, then the exchange and the replicator,
// which use them. It is the one adoption hook, so nothing depends on the
// order hooks were registered in.
func (d *Daemon) follow(def *rules.Definition) {
	d.nat.Follow(def)
	if def == nil {
		def = &rules.Definition{}
	}
	d.applyLimits(def)
	d.followSwarm(def)
	d.followReplication(def)
	d.followAudit(def)
}

// applyLimits makes the effective limits the stricter of config.toml and
// this host's entry in the definition.
func (d *Daemon) applyLimits(def *rules.Definition) {
	lim := d.cfg.Limits
	if m, ok := def.Member(rules.PeerID(d.host.ID())); ok {
		lim = lim.Stricter(m.Limits)
	}
	d.effective.Store(&lim)
	d.store.SetLimit(lim.Storage)
	d.log.Info("effective limits", "storage", lim.Storage, "upload", lim.Upload, "download", lim.Download)
}

// limits returns the effective limits.
func (d *Daemon) limits() rules.Limits {
	if l := d.effective.Load(); l != nil {
		return *l
	}
	return d.cfg.Limits
}

func readBounded(path string, max int64) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > max {
		return nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", path, st.Size(), max)
	}
	return os.ReadFile(path)
}

func swarmInfo(def *rules.Definition) *client.SwarmInfo {
	if def == nil {
		return nil
	}
	return &client.SwarmInfo{Name: def.Swarm, ID: def.ID.String(), Version: uint64(def.Version)}
}

func (d *Daemon) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req client.RulesRequest
	if !readJSON(w, r, &req) {
		return
	}
	def, err := d.members.Join(r.Context(), []byte(req.Signed))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("join: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, client.RulesResult{Swarm: *swarmInfo(def), Adopted: true})
}

func (d *Daemon) handlePushRules(w http.ResponseWriter, r *http.Request) {
	var req client.RulesRequest
	if !readJSON(w, r, &req) {
		return
	}
	adopted, err := d.members.Offer(r.Context(), []byte(req.Signed))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("rules push: %w", err))
		return
	}
	if !adopted {
		// The document adopted already: between members that is no news,
		// from the user it is a push that upgrades nothing.
		writeError(w, http.StatusBadRequest, fmt.Errorf("rules push: version %d is the current version already, not an upgrade", d.members.Current().Version))
		return
	}
	writeJSON(w, http.StatusOK, client.RulesResult{Swarm: *swarmInfo(d.members.Current()), Adopted: adopted})
}

func (d *Daemon) handleLeave(w http.ResponseWriter, r *http.Request) {
	if d.members.Current() == nil {
		writeError(w, http.StatusBadRequest, errors.New("leave: no swarm joined"))
		return
	}
	if err := d.drain(r.Context()); err != nil {
		writeError(w, http.StatusConflict, fmt.Errorf("leave: handing copies to other members: %w", err))
		return
	}
	if err := d.members.Leave(); err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("leave: %w", err))
		return
	}
	if err := os.Remove(d.home.RulesPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("leave: forgetting the definition: %w", err))
		return
	}
	d.log.Info("left the swarm")
	writeJSON(w, http.StatusOK, struct{}{})
}

// memberStatus lists the members of the adopted definition as seen from here.
func (d *Daemon) memberStatus() []client.MemberStatus {
	def := d.members.Current()
	if def == nil {
		return nil
	}
	var out []client.MemberStatus
	for _, m := range def.Members {
		ms := client.MemberStatus{PeerID: m.Peer.String(), Name: m.Name, Role: string(m.Role), Self: peer.ID(m.Peer) == d.host.ID()}
		ms.Connected = !ms.Self && len(d.host.Network().ConnsToPeer(peer.ID(m.Peer))) > 0
		if !ms.Self {
			ms.Connection = d.nat.ConnKind(peer.ID(m.Peer))
			ms.HolePunch = d.nat.HolePunchError(peer.ID(m.Peer))
		}
		if t := d.members.LastSeen(peer.ID(m.Peer)); !t.IsZero() {
			ms.LastSeen = t.UTC().Format("2006-01-02T15:04:05Z")
		}
		out = append(out, ms)
	}
	return out
}
