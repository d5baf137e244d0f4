package client

// The control API's request and response bodies. The JSON names are part of
// the CLI's --json contract (see DESIGN.md), so change them only on purpose.

// ID is this daemon's libp2p identity.
type ID struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// Status is the daemon's state, as `annex-swarm status --json` prints it.
type Status struct {
	PeerID         string      `json:"peer_id"`
	Version        string      `json:"version"`
	Swarm          *SwarmInfo  `json:"swarm"`
	ConnectedPeers int         `json:"connected_peers"`
	Store          StoreStatus `json:"store"`
	BytesSent      int64       `json:"bytes_sent"`
	BytesReceived  int64       `json:"bytes_received"`
	// RefusedConnections counts connections from non-members refused since start.
	RefusedConnections int64          `json:"refused_connections"`
	Limits             LimitsStatus   `json:"limits"`
	Members            []MemberStatus `json:"members,omitempty"`
	// Replication summarises the contents held here; nil outside a swarm.
	Replication *ReplicationStatus `json:"replication,omitempty"`
	// Audit counts the storage audits of this member; nil outside a swarm.
	Audit *AuditStatus `json:"audit,omitempty"`
	// Transfers are the puts and gets in flight on the control API.
	Transfers []Transfer `json:"transfers,omitempty"`
	// Web is the status page's address when [web] listen is set.
	Web *WebInfo `json:"web,omitempty"`
	// MetricsURL is the Prometheus endpoint when [metrics] listen is set.
	MetricsURL string `json:"metrics_url,omitempty"`
	// Reachability is whether members can dial this host: "public",
	// "private" (behind NAT) or "unknown" (docs/NAT.md).
	Reachability string `json:"reachability,omitempty"`
	// Relay is the relay service this host runs for members; nil when it
	// runs none (its entry in the definition lists no addresses).
	Relay *RelayStatus `json:"relay,omitempty"`
}

// RelayStatus counts what this host's relay service did since start.
type RelayStatus struct {
	Reservations        int64 `json:"reservations"`
	ReservationsRefused int64 `json:"reservations_refused"`
	Circuits            int64 `json:"circuits"`
	CircuitsRefused     int64 `json:"circuits_refused"`
	BytesRelayed        int64 `json:"bytes_relayed"`
}

// SwarmInfo names the adopted swarm definition; nil when none is adopted.
type SwarmInfo struct {
	Name    string `json:"name"`
	ID      string `json:"id"`
	Version uint64 `json:"version"`
}

// MemberStatus is one member of the swarm as this daemon sees it.
type MemberStatus struct {
	PeerID    string `json:"peer_id"`
	Name      string `json:"name"`
	Role      string `json:"role"`
	Self      bool   `json:"self,omitempty"`
	Connected bool   `json:"connected"`
	LastSeen  string `json:"last_seen,omitempty"` // RFC 3339, empty when never seen
	// Limits are the member's limits in the swarm definition (0 = none).
	Limits *LimitsStatus `json:"limits,omitempty"`
	// Connection is how this host is connected to the member: "direct",
	// "hole-punched" or "relayed"; empty when not connected.
	Connection string `json:"connection,omitempty"`
	// HolePunch says why the last hole punch with the member failed, when
	// it did and none succeeded since.
	HolePunch string `json:"hole_punch,omitempty"`
}

// StoreStatus is the chunk store's accounting, in bytes and counts.
type StoreStatus struct {
	Used      int64 `json:"used"`
	Limit     int64 `json:"limit"` // 0 = unlimited
	Chunks    int64 `json:"chunks"`
	Manifests int64 `json:"manifests"`
	Corrupt   int64 `json:"corrupt"`
	// Backend is where the objects are: "local", or "rclone:" and the remote.
	Backend string `json:"backend,omitempty"`
	// Error says why the store's backend is failing; empty while it works.
	// A member whose backend fails takes no placements.
	Error string `json:"error,omitempty"`
}

// LimitsStatus are the effective limits (0 = unlimited).
type LimitsStatus struct {
	Storage  int64 `json:"storage"`
	Upload   int64 `json:"upload"`
	Download int64 `json:"download"`
}

// PutRequest asks the daemon to store a local file.
type PutRequest struct {
	Path string `json:"path"` // absolute
	Key  string `json:"key,omitempty"`
}

// PutResult is the outcome of a put.
type PutResult struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
	// Copies is the storage members holding a verified copy when put
	// returned (at least copies_min in a swarm; 0 outside one).
	Copies int `json:"copies,omitempty"`
}

// GetRequest asks the daemon to write content to a local file.
type GetRequest struct {
	CID  string `json:"cid"`
	Path string `json:"path"` // absolute
	// NoSync renames the file into place without syncing it and its
	// folder: for a caller that hands the file on at once (git-annex moves
	// it into its object store), as a directory special remote's retrieve
	// does. The file is complete and verified either way.
	NoSync bool `json:"no_sync,omitempty"`
	// Hash, when set, names a hash of Hashes that the daemon computes over
	// the bytes it writes, beside writing them; the result has its digest.
	// The caller so checks the content end to end without reading it again.
	Hash string `json:"hash,omitempty"`
}

// GetResult is the outcome of a get.
type GetResult struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
	// Digest is the lower-case hex digest of the output under
	// GetRequest.Hash; empty when no hash was asked for.
	Digest string `json:"digest,omitempty"`
}

// FsckRequest asks for a verification of the whole store.
type FsckRequest struct {
	Repair bool `json:"repair"`
}

// FsckResult lists what a store verification found.
type FsckResult struct {
	// Checked counts the chunks read and verified.
	Checked int `json:"checked"`
	// Corrupt chunks failed verification and are now quarantined.
	Corrupt []string `json:"corrupt"`
	// Orphaned are chunk files the index does not list.
	Orphaned []string `json:"orphaned"`
	// Unreferenced are chunks held that no content references.
	Unreferenced []string `json:"unreferenced"`
	// Incomplete are contents with chunks missing (partial holding is normal
	// while content is being fetched; after corruption it needs a repair).
	Incomplete []string `json:"incomplete"`
	// CountersWrong says the store's counters disagreed with its index.
	CountersWrong bool `json:"counters_wrong,omitempty"`
	// Repaired says orphans and unreferenced chunks were removed.
	Repaired bool `json:"repaired,omitempty"`
}

// OK reports whether the store verified clean.
func (r FsckResult) OK() bool {
	return len(r.Corrupt) == 0 && len(r.Orphaned) == 0 && len(r.Unreferenced) == 0 && !r.CountersWrong
}

// Progress is one event of a long operation's stream.
type Progress struct {
	// Bytes done so far, and the total when known.
	Bytes int64 `json:"bytes"`
	Total int64 `json:"total,omitempty"`
	// Sources maps a peer (or "local") to the bytes it has delivered.
	Sources map[string]int64 `json:"sources,omitempty"`
	// Files done so far of FilesTotal, for a PutMany.
	Files      int `json:"files,omitempty"`
	FilesTotal int `json:"files_total,omitempty"`
}

// errorBody is the body of a non-streamed error response.
type errorBody struct {
	Error string `json:"error"`
}

// RulesRequest hands a clear-signed swarm definition to the daemon (join or push).
type RulesRequest struct {
	Signed string `json:"signed"`
}

// RulesResult says which definition the daemon holds after a join or push.
type RulesResult struct {
	Swarm   SwarmInfo `json:"swarm"`
	Adopted bool      `json:"adopted"`
}

// Transfer is a put or get in flight on the daemon's control API, with its
// latest progress. Background replication is not listed.
type Transfer struct {
	Op string `json:"op"` // put or get
	// Phase of a put: storing (reading the file in) or seeding (copies
	// going to members; Bytes is then the copies_min-th holder's).
	Phase   string `json:"phase,omitempty"`
	Subject string `json:"subject"` // the local file
	Bytes   int64  `json:"bytes"`
	Total   int64  `json:"total,omitempty"`
	// Sources maps a peer to its bytes: the sources of a get, the new
	// holders of a seeding put.
	Sources map[string]int64 `json:"sources,omitempty"`
	Started string           `json:"started"` // RFC 3339
}

// WebInfo says where the web status page is served, token included.
type WebInfo struct {
	URL string `json:"url"`
}

// AuditStatus counts the storage audits of this member
// (docs/RELIABILITY.md "Audits"); part of Status.
type AuditStatus struct {
	// IntervalSeconds is the period of the audit round.
	IntervalSeconds int64 `json:"interval_seconds"`
	Sent            int64 `json:"sent"`    // challenges sent
	Passed          int64 `json:"passed"`  // answered with the right proof
	Failed          int64 `json:"failed"`  // answered missing or wrong: the content was placed anew
	Unknown         int64 `json:"unknown"` // not answered in time: retried next round
	// Served counts challenges answered here; LostHere those answered
	// missing because this member's own chunk was lost or corrupt.
	Served   int64 `json:"served"`
	LostHere int64 `json:"lost_here"`
	// BytesToday are the chunk bytes read to check answers in the current
	// 24-hour budget window, of BytesPerDay.
	BytesToday  int64 `json:"bytes_today"`
	BytesPerDay int64 `json:"bytes_per_day"`
	// LastAudit is when the last round started (RFC 3339), empty before the first.
	LastAudit string `json:"last_audit,omitempty"`
}
