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
}

// StoreStatus is the chunk store's accounting, in bytes and counts.
type StoreStatus struct {
	Used      int64 `json:"used"`
	Limit     int64 `json:"limit"` // 0 = unlimited
	Chunks    int64 `json:"chunks"`
	Manifests int64 `json:"manifests"`
	Corrupt   int64 `json:"corrupt"`
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
