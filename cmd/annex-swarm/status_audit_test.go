package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// The dashboard shows the audit counters once a round has run, and not before.
func TestStatusDashboardAudits(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st := client.Status{PeerID: "12D3KooWself", Version: "0.1.0-dev",
		Audit: &client.AuditStatus{IntervalSeconds: 3600}}
	var b bytes.Buffer
	printStatus(&b, st, t0)
	if strings.Contains(b.String(), "audits") {
		t.Fatalf("audits shown before any round:\n%s", b.String())
	}
	st.Audit = &client.AuditStatus{Sent: 9, Passed: 6, Failed: 2, Unknown: 1, Served: 4, LostHere: 1,
		LastAudit: t0.Add(-2 * time.Minute).Format(time.RFC3339)}
	b.Reset()
	printStatus(&b, st, t0)
	want := "audits    9 sent: 6 passed, 2 failed, 1 unknown; 4 answered, 1 lost here; last 2m ago"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("dashboard lacks %q:\n%s", want, b.String())
	}
}
