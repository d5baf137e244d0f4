package daemon

import (
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/audit"
)

// newAuditor wires the storage auditor (docs/RELIABILITY.md "Audits") to
// the host, the store and the replicator.
func (d *Daemon) newAuditor(interval time.Duration) *audit.Auditor {
	return audit.New(audit.Options{
		Host: d.host, Store: d.store, Replicator: d.repl, Logger: d.log, Interval: interval,
	})
}

// followAudit points the auditor at the adopted swarm.
func (d *Daemon) followAudit(def *rules.Definition) {
	if def == nil || def.ID.IsZero() {
		d.audit.SetSwarm("")
		return
	}
	d.audit.SetSwarm(def.ID.String())
}

// auditStatus is the audit counters for the status; nil outside a swarm.
func (d *Daemon) auditStatus() *client.AuditStatus {
	if d.members.Current() == nil {
		return nil
	}
	s := d.audit.Stats()
	out := &client.AuditStatus{
		IntervalSeconds: int64(d.audit.Interval() / time.Second),
		Sent:            s.Sent, Passed: s.Passed, Failed: s.Failed, Unknown: s.Unknown,
		Served: s.Served, LostHere: s.LostHere,
		BytesToday: s.BytesToday, BytesPerDay: d.audit.BytesPerDay(),
	}
	if !s.LastRound.IsZero() {
		out.LastAudit = s.LastRound.UTC().Format(time.RFC3339)
	}
	return out
}
