package rules

import (
	"fmt"
	"slices"
	"time"

	ma "github.com/multiformats/go-multiaddr"
)

// Format is the version of the document format this package writes for a
// definition without erasure coding (the `format` field). See
// docs/RULES.md#fields.
const Format = 1

// FormatErasure is the format of a definition whose replication.erasure is
// set; daemons that read only format 1 refuse it as a whole
// (docs/RULES.md#format-2-erasure-coding).
const FormatErasure = 2

// Bounds on a definition. A document past any of them is refused.
const (
	// MaxDocumentSize bounds a whole signed document, armor included.
	MaxDocumentSize = 1 << 20
	// MaxAdmins bounds the number of admin entries.
	MaxAdmins = 32
	// MaxAdminKeySize bounds the armored text of one admin key.
	MaxAdminKeySize = 64 << 10
	// MaxMembers bounds the number of member entries.
	MaxMembers = 1024
	// MaxAddrs bounds the multiaddrs of one member.
	MaxAddrs = 16
	// MaxGroups bounds the groups of one member.
	MaxGroups = 32
	// MaxNameLen bounds swarm, member and group names.
	MaxNameLen = 64
	// MaxCopies bounds copies and copies_min.
	MaxCopies = 64
)

// Role says what a member does in the swarm.
type Role string

const (
	// RoleStorage members hold copies of content and serve it.
	RoleStorage Role = "storage"
	// RoleClient members put and get content but are never asked to hold copies.
	RoleClient Role = "client"
)

// Definition is one version of a swarm definition. Values returned by Parse,
// Verify and friends are valid; a Definition edited in memory is checked
// again by Validate and when it is signed.
type Definition struct {
	// Swarm is the swarm's human name; it never changes after the genesis.
	Swarm string
	// ID is derived from the genesis (see DeriveID) and never changes.
	ID ID
	// Version is 1 for the genesis and grows with each change.
	Version int64
	// Created is when the genesis was made (UTC); it never changes.
	Created time.Time
	// Replication is the replication policy.
	Replication Replication
	// Admins are the keys that may sign the next version.
	Admins []Admin
	// Members are the hosts admitted to the swarm.
	Members []Member

	signed []byte // the clear-signed document this came from, if any
	signer string // fingerprint of the admin key that signed it, if any
}

// Replication is the swarm's replication policy.
type Replication struct {
	// Copies is the number of verified full copies the swarm keeps.
	Copies int
	// CopiesMin is the number of copies a store needs before it succeeds.
	CopiesMin int
	// RepairAfter is how long a missing copy is tolerated before repair starts.
	RepairAfter time.Duration
	// Erasure is the erasure-coding scheme of contents of at least
	// Erasure.MinSize bytes; the zero value means plain replication of all
	// contents (docs/ERASURE.md).
	Erasure Erasure
}

// Erasure is an erasure-coding scheme: every chunk is coded into Data data
// shards and Parity parity shards (docs/ERASURE.md). The zero value means
// none; a set scheme has Data >= 1, Parity >= 1, Data+Parity <= MaxShards.
type Erasure struct {
	Data   int
	Parity int
	// MinSize is the content size, in bytes, from which contents are coded;
	// smaller contents stay replicated. 0 codes every content.
	MinSize int64
}

// Admin is an admin's OpenPGP public key.
type Admin struct {
	// Name is a label, by default the key's primary user ID.
	Name string
	// Fingerprint is the key's primary fingerprint, upper-case hex.
	Fingerprint string
	// Key is the armored OpenPGP public key.
	Key string
}

// Member is one host of the swarm.
type Member struct {
	// Name is unique in the definition.
	Name string
	// Peer is the host's libp2p peer ID, unique in the definition.
	Peer PeerID
	// Addrs are where the host listens; other members dial them.
	Addrs []ma.Multiaddr
	// Role is storage or client.
	Role Role
	// Groups are free labels for placement rules.
	Groups []string
	// Limits are this member's limits; zero fields are unlimited.
	Limits Limits
}

// Limits are a member's storage and bandwidth limits. Zero means unlimited.
type Limits struct {
	Storage  int64 // bytes
	Upload   int64 // bytes per second
	Download int64 // bytes per second
}

// Stricter returns, field by field, the stricter of l and o (zero is
// unlimited). A host's effective limits are its rules entry's limits made
// stricter by its own config.toml.
func (l Limits) Stricter(o Limits) Limits {
	pick := func(a, b int64) int64 {
		if a == 0 || (b != 0 && b < a) {
			return b
		}
		return a
	}
	return Limits{Storage: pick(l.Storage, o.Storage), Upload: pick(l.Upload, o.Upload), Download: pick(l.Download, o.Download)}
}

// Signed returns the clear-signed document d was verified from, or nil for a
// definition that was not read from a signed document.
func (d *Definition) Signed() []byte { return slices.Clone(d.signed) }

// SignerFingerprint returns the fingerprint of the admin key that signed the
// document d was verified from, or "" when d was not read from one.
func (d *Definition) SignerFingerprint() string { return d.signer }

// Member returns the entry of peer p.
func (d *Definition) Member(p PeerID) (Member, bool) {
	for _, m := range d.Members {
		if m.Peer == p {
			return m, true
		}
	}
	return Member{}, false
}

// Peers returns the peer IDs of all members, in document order.
func (d *Definition) Peers() []PeerID {
	ps := make([]PeerID, len(d.Members))
	for i, m := range d.Members {
		ps[i] = m.Peer
	}
	return ps
}

// Admin returns the admin entry with fingerprint fpr (any case).
func (d *Definition) Admin(fpr string) (Admin, bool) {
	fpr = normalizeFingerprint(fpr)
	for _, a := range d.Admins {
		if a.Fingerprint == fpr {
			return a, true
		}
	}
	return Admin{}, false
}

// Clone returns a deep copy of d, without its signed document.
func (d *Definition) Clone() *Definition {
	c := *d
	c.signed, c.signer = nil, ""
	c.Admins = slices.Clone(d.Admins)
	c.Members = make([]Member, len(d.Members))
	for i, m := range d.Members {
		m.Addrs = slices.Clone(m.Addrs)
		m.Groups = slices.Clone(m.Groups)
		c.Members[i] = m
	}
	return &c
}

// Summary returns a short human description: name, ID, version, counts and policy.
func (d *Definition) Summary() string {
	s := fmt.Sprintf("swarm %s\nid %s\nversion %d\nadmins %d\nmembers %d\npolicy copies=%d copies_min=%d repair_after=%s",
		d.Swarm, d.ID, d.Version, len(d.Admins), len(d.Members),
		d.Replication.Copies, d.Replication.CopiesMin, formatDuration(d.Replication.RepairAfter))
	if e := d.Replication.Erasure; e.Enabled() {
		s += fmt.Sprintf(" erasure=%s erasure_min_size=%s", e, FormatSize(e.MinSize))
	}
	return s
}
