package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil)
}

var (
	descInfo      = desc("info", "Always 1; the labels name the daemon's version and peer ID.", "version", "peer_id")
	descRules     = desc("rules_version", "Version of the adopted swarm definition (absent outside a swarm).", "swarm", "swarm_id")
	descPeers     = desc("connected_peers", "libp2p peers connected now.")
	descMembers   = desc("members", "Members of the adopted definition, by role and whether this daemon is connected to them (self counts as connected).", "role", "connected")
	descPayload   = desc("chunk_payload_bytes_total", "Chunk payload bytes moved by the exchange since start.", "direction")
	descUsed      = desc("store_used_bytes", "Bytes of chunk data held.")
	descLimit     = desc("store_limit_bytes", "Storage limit in force (absent when unlimited).")
	descChunks    = desc("store_chunks", "Chunks held.")
	descManifests = desc("store_manifests", "Contents (manifests) recorded in the store.")
	descCorrupt   = desc("store_chunks_corrupt_total", "Chunks found corrupt and quarantined, over the store's life.")
	descContents  = desc("replication_contents", "Contents held here, by replication state as of the last repair round (a content can be in several states).", "state")
	descPlaced    = desc("replication_placements_started_total", "Repair placements this member started since the daemon started.")
	descQueue     = desc("replication_placements", "Repair placements waiting in the queue and running now.", "state")
	descRemovals  = desc("replication_removal_records", "Removal records held (contents removed from the swarm).")
	descLastRound = desc("replication_last_round_timestamp_seconds", "When the last repair round ended (absent before the first).")
	descRefused   = desc("refused_connections_total", "Connections from non-members refused since start.")
	descRateLimit = desc("bandwidth_limit_bytes_per_second", "Effective bandwidth limit (absent when unlimited).", "direction")
	descTransfers = desc("transfers_in_progress", "Puts and gets running on the control API.", "op")
	descAudits    = desc("audits_total", "Storage audits since start: challenges this member sent, by outcome (passed, failed, unknown), and challenges it served (served, lost_here: answered missing because its own chunk was lost or corrupt).", "outcome")
	descAuditRead = desc("audit_read_bytes", "Chunk bytes read to check audit answers in the current 24-hour budget window.")
	descRelay     = desc("relay_total", "What this member's relay service did since start (public members only), by event.", "event")
)

// collector turns one status snapshot into metrics at each scrape.
type collector struct{ status StatusFunc }

func newCollector(s StatusFunc) *collector { return &collector{status: s} }

// Describe sends nothing: the collector is unchecked, as some metrics are
// absent when their value does not exist (no swarm, no limit).
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(descInfo, 1, st.Version, st.PeerID)
	if st.Swarm != nil {
		gauge(descRules, float64(st.Swarm.Version), st.Swarm.Name, st.Swarm.ID)
	}
	gauge(descPeers, float64(st.ConnectedPeers))
	members := map[[2]string]int{}
	for _, m := range st.Members {
		conn := "false"
		if m.Connected || m.Self {
			conn = "true"
		}
		members[[2]string{m.Role, conn}]++
	}
	for k, n := range members {
		gauge(descMembers, float64(n), k[0], k[1])
	}
	counter(descPayload, float64(st.BytesSent), "sent")
	counter(descPayload, float64(st.BytesReceived), "received")
	gauge(descUsed, float64(st.Store.Used))
	if st.Store.Limit > 0 {
		gauge(descLimit, float64(st.Store.Limit))
	}
	gauge(descChunks, float64(st.Store.Chunks))
	gauge(descManifests, float64(st.Store.Manifests))
	counter(descCorrupt, float64(st.Store.Corrupt))
	if r := st.Replication; r != nil {
		for state, n := range map[string]int{
			"held": r.Contents, "at_target": r.AtTarget, "below_target": r.BelowTarget,
			"below_copies_min": r.BelowMin, "in_repair": r.InRepair, "no_room": r.NoRoom,
			"unknown": r.Unknown, "coded": r.Coded,
		} {
			gauge(descContents, float64(n), state)
		}
		gauge(descRemovals, float64(r.Removed))
		counter(descPlaced, float64(r.Placements))
		gauge(descQueue, float64(r.Queued), "queued")
		gauge(descQueue, float64(r.Placing), "running")
		if t, err := time.Parse(time.RFC3339, r.LastRound); err == nil {
			gauge(descLastRound, float64(t.Unix()))
		}
	}
	counter(descRefused, float64(st.RefusedConnections))
	if st.Limits.Upload > 0 {
		gauge(descRateLimit, float64(st.Limits.Upload), "upload")
	}
	if st.Limits.Download > 0 {
		gauge(descRateLimit, float64(st.Limits.Download), "download")
	}
	if a := st.Audit; a != nil {
		for outcome, n := range map[string]int64{
			"passed": a.Passed, "failed": a.Failed, "unknown": a.Unknown,
			"served": a.Served, "lost_here": a.LostHere,
		} {
			counter(descAudits, float64(n), outcome)
		}
		gauge(descAuditRead, float64(a.BytesToday))
	}
	if r := st.Relay; r != nil {
		for event, n := range map[string]int64{
			"reservations": r.Reservations, "reservations_refused": r.ReservationsRefused,
			"circuits": r.Circuits, "circuits_refused": r.CircuitsRefused, "bytes_relayed": r.BytesRelayed,
		} {
			counter(descRelay, float64(n), event)
		}
	}
	count := map[string]int{"put": 0, "get": 0}
	for _, t := range st.Transfers {
		count[t.Op]++
	}
	for op, n := range count {
		gauge(descTransfers, float64(n), op)
	}
}
