package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

func TestServeMetrics(t *testing.T) {
	st := client.Status{
		PeerID: "12D3KooTest", Version: "0.1.0-dev",
		Swarm:     &client.SwarmInfo{Name: "home", ID: "abc", Version: 4},
		Members:   []client.MemberStatus{{Role: "storage", Self: true}, {Role: "storage", Connected: true}, {Role: "client"}},
		Store:     client.StoreStatus{Used: 1234, Chunks: 3, Corrupt: 1},
		BytesSent: 10, BytesReceived: 20, RefusedConnections: 2,
		Limits:      client.LimitsStatus{Upload: 1 << 20},
		Replication: &client.ReplicationStatus{Contents: 5, AtTarget: 4, BelowTarget: 1, LastRound: "2026-11-30T20:00:00Z", Queued: 3, Placements: 11},
		Transfers:   []client.Transfer{{Op: "get", Bytes: 7}},
		Audit:       &client.AuditStatus{Sent: 9, Passed: 7, Failed: 1, Unknown: 1, Served: 4, BytesToday: 4096},
		Relay:       &client.RelayStatus{Reservations: 2, CircuitsRefused: 1},
	}
	lat := NewLatency()
	lat.Observe("GET /v1/status", time.Now().Add(-3*time.Millisecond))
	srv, err := Listen("127.0.0.1:0", Registry(func() client.Status { return st }, lat), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go srv.Serve(ctx)
	resp, err := http.Get(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	body := string(b)
	for _, want := range []string{
		`annex_swarm_rules_version{swarm="home",swarm_id="abc"} 4`,
		`annex_swarm_members{connected="true",role="storage"} 2`,
		`annex_swarm_members{connected="false",role="client"} 1`,
		`annex_swarm_chunk_payload_bytes_total{direction="received"} 20`,
		`annex_swarm_store_used_bytes 1234`,
		`annex_swarm_store_chunks_corrupt_total 1`,
		`annex_swarm_replication_contents{state="below_target"} 1`,
		`annex_swarm_replication_last_round_timestamp_seconds 1.7960688e+09`,
		`annex_swarm_refused_connections_total 2`,
		`annex_swarm_bandwidth_limit_bytes_per_second{direction="upload"} 1.048576e+06`,
		`annex_swarm_transfers_in_progress{op="get"} 1`,
		`annex_swarm_control_request_duration_seconds_count{endpoint="GET /v1/status"} 1`,
		`annex_swarm_replication_placements_started_total 11`,
		`annex_swarm_replication_placements{state="queued"} 3`,
		`annex_swarm_audits_total{outcome="failed"} 1`,
		`annex_swarm_audits_total{outcome="served"} 4`,
		`annex_swarm_audit_read_bytes 4096`,
		`annex_swarm_relay_total{event="reservations"} 2`,
		`annex_swarm_relay_total{event="circuits_refused"} 1`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	// Unlimited values are absent, never a made-up zero.
	for _, absent := range []string{"annex_swarm_store_limit_bytes", `direction="download"} `} {
		if strings.Contains(body, absent) {
			t.Errorf("scrape has %q although unlimited", absent)
		}
	}
}
