package client

import (
	"context"
	"net/http"
)

// WhereRequest asks which members hold a content.
type WhereRequest struct {
	CID string `json:"cid"`
	// Cached answers from the last repair round's knowledge, without
	// asking the members, when that knowledge exists.
	Cached bool `json:"cached,omitempty"`
}

// Holder is one member holding a verified full copy.
type Holder struct {
	PeerID string `json:"peer_id"`
	Name   string `json:"name"`
}

// WhereResult is `annex-swarm where CID --json`: the storage members holding
// a verified full copy, their count and the swarm's target.
type WhereResult struct {
	CID string `json:"cid"`
	// Resolved is the root the answer is for when CID was re-coded since
	// (docs/ERASURE.md "Re-coding"): its successor, whose holders and
	// shards the answer lists; empty when CID is answered for itself.
	Resolved string   `json:"resolved,omitempty"`
	Holders  []Holder `json:"holders"`
	Copies   int      `json:"copies"`
	Target   int      `json:"target"`
	// CopiesMin is the swarm's copies_min.
	CopiesMin int `json:"copies_min"`
	// Unreachable counts storage members that did not answer; with some
	// unreachable, the true count may be higher than Copies.
	Unreachable int `json:"unreachable"`
	// The fields below describe an erasure-coded content
	// (docs/ERASURE.md "Visibility"); for it Copies is the happiness h
	// (distinct members matched to distinct shard sets), CopiesMin the
	// success threshold and Target k+m, so that Copies >= CopiesMin says
	// the put's promise holds.
	Layout  string `json:"layout,omitempty"`  // "erasure"
	Scheme  string `json:"scheme,omitempty"`  // "4+2"
	Needed  int    `json:"needed,omitempty"`  // k
	Success int    `json:"success,omitempty"` // success threshold S
	Repair  int    `json:"repair,omitempty"`  // repair threshold R
	// Shards lists each member holding shard sets, and which.
	Shards []ShardHolder `json:"shards,omitempty"`
	// Placed counts the distinct sets held.
	Placed int `json:"placed,omitempty"`
	// Survives is how many more member losses the content survives now
	// (h − k); set for coded contents.
	Survives *int `json:"survives,omitempty"`
}

// ShardHolder is one member holding shard sets of a coded content.
type ShardHolder struct {
	Member string `json:"member"`
	Peer   string `json:"peer"`
	Sets   []int  `json:"sets"`
	State  string `json:"state"` // "live": answered now
}

// RemoveRequest asks for the removal of a content from every member.
type RemoveRequest struct {
	CID string `json:"cid"`
	// NoSurvey skips asking the members who holds the content before
	// removing it (the result then has Surveyed false): a survey round
	// trip less, for a caller that does not report the holders.
	NoSurvey bool `json:"no_survey,omitempty"`
}

// RemoveResult is the outcome of a removal.
type RemoveResult struct {
	CID string `json:"cid"`
	// Surveyed says the members were asked before the removal (only in a
	// swarm); Holders is then how many storage members held a verified copy
	// and Unreachable how many could not be asked.
	Surveyed    bool `json:"surveyed"`
	Holders     int  `json:"holders"`
	Unreachable int  `json:"unreachable"`
}

// ReplicationStatus summarises the replication of the contents this member
// holds, as of its last repair round.
type ReplicationStatus struct {
	Contents    int `json:"contents"`
	AtTarget    int `json:"at_target"`
	BelowTarget int `json:"below_target"`
	BelowMin    int `json:"below_copies_min"`
	InRepair    int `json:"in_repair"`
	NoRoom      int `json:"no_room"`
	// Full names the storage members that refused a copy for lack of room
	// (or ran out of space taking one) in the last minute; placement skips
	// them meanwhile.
	Full    []string `json:"full,omitempty"`
	Removed int      `json:"removed"`
	// Unknown counts contents an alive member did not answer for at the
	// last round (nothing is placed for them until it does).
	Unknown int `json:"unknown"`
	// Checked counts the contents surveyed at the last round (the others
	// were settled and not due).
	Checked int `json:"checked_last_round"`
	// Queued and Placing are the repair placements waiting and running
	// now; Placements counts those started since the daemon started.
	Queued     int    `json:"placements_queued"`
	Placing    int    `json:"placements_running"`
	Placements uint64 `json:"placements_started"`
	LastRound  string `json:"last_round,omitempty"` // RFC 3339
	// Problem is a one-line warning, e.g. when no member has room.
	Problem string `json:"problem,omitempty"`
	// Coded counts the erasure-coded contents held here (whole or a shard
	// set), and Survives counts them by how many more member losses each
	// survives ("-1", "0", "1", …; docs/ERASURE.md "Visibility").
	Coded    int            `json:"coded,omitempty"`
	Survives map[string]int `json:"survives,omitempty"`
}

// Where asks the daemon which storage members hold a verified full copy of cid.
func (c *Client) Where(ctx context.Context, cid string) (WhereResult, error) {
	var r WhereResult
	return r, c.call(ctx, http.MethodPost, "/v1/where", WhereRequest{CID: cid}, &r)
}

// WhereCached answers like Where from the daemon's last survey when it has
// one, without waiting on the network.
func (c *Client) WhereCached(ctx context.Context, cid string) (WhereResult, error) {
	var r WhereResult
	return r, c.call(ctx, http.MethodPost, "/v1/where", WhereRequest{CID: cid, Cached: true}, &r)
}

// Remove removes cid from every member of the swarm, saying how many held
// it.
func (c *Client) Remove(ctx context.Context, cid string) (RemoveResult, error) {
	return c.RemoveWith(ctx, RemoveRequest{CID: cid})
}

// RemoveWith is Remove with the request's options.
func (c *Client) RemoveWith(ctx context.Context, req RemoveRequest) (RemoveResult, error) {
	var r RemoveResult
	return r, c.call(ctx, http.MethodPost, "/v1/rm", req, &r)
}
