package rules

import (
	"fmt"

	"github.com/ProtonMail/go-crypto/openpgp"
)

// Validate checks every rule of the format (docs/RULES.md#fields) on d:
// names, ranges, copies_min <= copies, admin keys and fingerprints, member
// peer IDs and addresses, no member listed twice, and for a genesis that its
// ID is derived from its own fields.
func (d *Definition) Validate() error {
	if err := checkName(d.Swarm); err != nil {
		return fmt.Errorf("swarm: %w", err)
	}
	if d.ID.IsZero() {
		return fmt.Errorf("%w: id is missing", ErrInvalid)
	}
	if d.Version < 1 {
		return fmt.Errorf("%w: version = %d, want 1 or more", ErrInvalid, d.Version)
	}
	if d.Created.IsZero() {
		return fmt.Errorf("%w: created is missing", ErrInvalid)
	}
	if err := d.Replication.validate(); err != nil {
		return err
	}
	if _, err := d.keyring(); err != nil {
		return err
	}
	if d.Version == 1 && d.genesisID() != d.ID {
		return fmt.Errorf("%w: genesis id %s is not derived from its swarm, created and admins (want %s)", ErrSwarmID, d.ID, d.genesisID())
	}
	if len(d.Members) > MaxMembers {
		return fmt.Errorf("%w: %d members, the bound is %d", ErrTooLarge, len(d.Members), MaxMembers)
	}
	names := make(map[string]int, len(d.Members))
	peers := make(map[string]int, len(d.Members))
	for i, m := range d.Members {
		if err := m.validate(); err != nil {
			return fmt.Errorf("member %d (%q): %w", i+1, m.Name, err)
		}
		if j, dup := names[m.Name]; dup {
			return fmt.Errorf("%w: members %d and %d are both named %q", ErrDuplicateMember, j+1, i+1, m.Name)
		}
		if j, dup := peers[string(m.Peer)]; dup {
			return fmt.Errorf("%w: members %d and %d are both peer %s", ErrDuplicateMember, j+1, i+1, m.Peer)
		}
		names[m.Name], peers[string(m.Peer)] = i, i
	}
	return nil
}

func (r Replication) validate() error {
	switch {
	case r.Copies < 1 || r.Copies > MaxCopies:
		return fmt.Errorf("%w: replication.copies = %d, want 1 to %d", ErrInvalid, r.Copies, MaxCopies)
	case r.CopiesMin < 1 || r.CopiesMin > r.Copies:
		return fmt.Errorf("%w: replication.copies_min = %d, want 1 to copies (%d)", ErrInvalid, r.CopiesMin, r.Copies)
	case r.RepairAfter <= 0 || r.RepairAfter > maxRepairAfter:
		return fmt.Errorf("%w: replication.repair_after = %s, want more than 0 and at most %s", ErrInvalid, r.RepairAfter, maxRepairAfter)
	}
	return r.Erasure.validate()
}

func (m Member) validate() error {
	if err := checkName(m.Name); err != nil {
		return err
	}
	if err := m.Peer.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrPeerID, err)
	}
	if len(m.Addrs) > MaxAddrs {
		return fmt.Errorf("%w: %d addrs, the bound is %d", ErrTooLarge, len(m.Addrs), MaxAddrs)
	}
	seen := make(map[string]bool, len(m.Addrs))
	for _, a := range m.Addrs {
		if a == nil || len(a) == 0 {
			return fmt.Errorf("%w: empty address", ErrMultiaddr)
		}
		if _, err := ParseAddr(a.String(), m.Peer); err != nil {
			return err
		}
		if seen[a.String()] {
			return fmt.Errorf("%w: address %s listed twice", ErrInvalid, a)
		}
		seen[a.String()] = true
	}
	if m.Role != RoleStorage && m.Role != RoleClient {
		return fmt.Errorf("%w: role = %q, want %q or %q", ErrInvalid, m.Role, RoleStorage, RoleClient)
	}
	if len(m.Groups) > MaxGroups {
		return fmt.Errorf("%w: %d groups, the bound is %d", ErrTooLarge, len(m.Groups), MaxGroups)
	}
	groups := make(map[string]bool, len(m.Groups))
	for _, g := range m.Groups {
		if err := checkName(g); err != nil {
			return fmt.Errorf("group: %w", err)
		}
		if groups[g] {
			return fmt.Errorf("%w: group %q listed twice", ErrInvalid, g)
		}
		groups[g] = true
	}
	if m.Limits.Storage < 0 || m.Limits.Upload < 0 || m.Limits.Download < 0 {
		return fmt.Errorf("%w: negative limit", ErrInvalid)
	}
	return nil
}

// keyring parses the admin keys; it is the set of keys whose signatures the
// next version accepts.
func (d *Definition) keyring() (openpgp.EntityList, error) {
	if len(d.Admins) == 0 {
		return nil, fmt.Errorf("%w: no admin", ErrInvalid)
	}
	if len(d.Admins) > MaxAdmins {
		return nil, fmt.Errorf("%w: %d admins, the bound is %d", ErrTooLarge, len(d.Admins), MaxAdmins)
	}
	el := make(openpgp.EntityList, 0, len(d.Admins))
	seen := make(map[string]bool, len(d.Admins))
	for i, a := range d.Admins {
		pa, e, err := parseAdmin(a.Name, a.Fingerprint, a.Key)
		if err != nil {
			return nil, fmt.Errorf("admin %d: %w", i+1, err)
		}
		if pa != a {
			return nil, fmt.Errorf("%w: admin %d: fingerprint or key not in canonical form", ErrInvalid, i+1)
		}
		if seen[a.Fingerprint] {
			return nil, fmt.Errorf("%w: admin %s listed twice", ErrInvalid, a.Fingerprint)
		}
		seen[a.Fingerprint] = true
		el = append(el, e)
	}
	return el, nil
}
