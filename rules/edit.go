package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The edits behind the offline authoring commands (docs/RULES.md#authoring).
// Each works on a definition in memory; Sign checks and signs the result.

// DefaultReplication is the policy of a new swarm unless told otherwise.
var DefaultReplication = Replication{Copies: 2, CopiesMin: 1, RepairAfter: time.Hour}

// Create makes the genesis (version 1) of a swarm named name, with admin as
// its only admin, the policy r, and created at now. Sign it with
// admin.Sign(d, nil).
func Create(name string, admin *Signer, r Replication, now time.Time) (*Definition, error) {
	a, err := admin.Admin()
	if err != nil {
		return nil, err
	}
	d := &Definition{Swarm: name, Version: 1, Created: now.UTC(), Replication: r, Admins: []Admin{a}}
	d.ID = d.genesisID()
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("creating swarm %q: %w", name, err)
	}
	return d, nil
}

// Next returns a copy of d with the version one higher, ready for edits.
func (d *Definition) Next() *Definition {
	n := d.Clone()
	n.Version++
	return n
}

// AddMember adds m; a member with the same peer ID or name is refused with
// ErrDuplicateMember.
func (d *Definition) AddMember(m Member) error {
	for _, o := range d.Members {
		if o.Peer == m.Peer {
			return fmt.Errorf("%w: peer %s is already member %q", ErrDuplicateMember, m.Peer, o.Name)
		}
		if o.Name == m.Name {
			return fmt.Errorf("%w: name %q is already used by peer %s", ErrDuplicateMember, m.Name, o.Peer)
		}
	}
	if err := m.validate(); err != nil {
		return fmt.Errorf("member %q: %w", m.Name, err)
	}
	if len(d.Members) >= MaxMembers {
		return fmt.Errorf("%w: already %d members", ErrTooLarge, len(d.Members))
	}
	d.Members = append(d.Members, m)
	return nil
}

// RemoveMember removes the member with peer ID p.
func (d *Definition) RemoveMember(p PeerID) error {
	i := slices.IndexFunc(d.Members, func(m Member) bool { return m.Peer == p })
	if i < 0 {
		return fmt.Errorf("%w: peer %s is not a member", ErrNotFound, p)
	}
	d.Members = slices.Delete(d.Members, i, i+1)
	return nil
}

// AddAdmin adds an admin key (see ReadAdmin).
func (d *Definition) AddAdmin(a Admin) error {
	if _, ok := d.Admin(a.Fingerprint); ok {
		return fmt.Errorf("%w: key %s is already an admin", ErrInvalid, a.Fingerprint)
	}
	if len(d.Admins) >= MaxAdmins {
		return fmt.Errorf("%w: already %d admins", ErrTooLarge, len(d.Admins))
	}
	if _, _, err := parseAdmin(a.Name, a.Fingerprint, a.Key); err != nil {
		return err
	}
	d.Admins = append(d.Admins, a)
	return nil
}

// RemoveAdmin removes the admin with fingerprint fpr; the last admin stays.
func (d *Definition) RemoveAdmin(fpr string) error {
	fpr = normalizeFingerprint(fpr)
	i := slices.IndexFunc(d.Admins, func(a Admin) bool { return a.Fingerprint == fpr })
	if i < 0 {
		return fmt.Errorf("%w: %s is not an admin", ErrNotFound, fpr)
	}
	if len(d.Admins) == 1 {
		return fmt.Errorf("%w: cannot remove the last admin", ErrInvalid)
	}
	d.Admins = slices.Delete(d.Admins, i, i+1)
	return nil
}

// Set applies one policy assignment KEY=VALUE, where KEY is copies,
// copies_min, repair_after, erasure (K+M or none) or erasure_min_size (a
// size). The result is checked when signed.
func (d *Definition) Set(assignment string) error {
	key, value, ok := strings.Cut(assignment, "=")
	key, value = strings.TrimSpace(key), strings.TrimSpace(value)
	if !ok || value == "" {
		return fmt.Errorf("%w: %q: want KEY=VALUE", ErrInvalid, assignment)
	}
	r := &d.Replication
	switch key {
	case "copies", "copies_min":
		n, err := strconv.Atoi(value)
		if err != nil || n < 1 || n > MaxCopies {
			return fmt.Errorf("%w: %s=%q: want a whole number from 1 to %d", ErrInvalid, key, value, MaxCopies)
		}
		if key == "copies" {
			r.Copies = n
		} else {
			r.CopiesMin = n
		}
	case "repair_after":
		v, err := time.ParseDuration(value)
		if err != nil || v <= 0 {
			return fmt.Errorf("%w: repair_after=%q: want a duration like 1h or 30m", ErrInvalid, value)
		}
		r.RepairAfter = v
	case "erasure", "erasure_min_size":
		return r.Erasure.set(key, value)
	default:
		return fmt.Errorf("%w: cannot set %q (copies, copies_min, repair_after, erasure, erasure_min_size)", ErrInvalid, key)
	}
	return nil
}
