package rules

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"
)

// ID identifies a swarm. It is derived from the genesis (version 1) and
// carried unchanged by every later version. See docs/RULES.md#swarm-id.
type ID [sha256.Size]byte

// idEncoding is lower-case RFC 4648 base32 without padding (52 characters).
var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// idLen is the length of an ID's text form.
const idLen = 52

// String returns the ID as 52 lower-case base32 characters.
func (id ID) String() string { return strings.ToLower(idEncoding.EncodeToString(id[:])) }

// IsZero reports whether id is the zero ID, which names no swarm.
func (id ID) IsZero() bool { return id == ID{} }

// ParseID parses the text form of an ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != idLen || strings.ToLower(s) != s {
		return id, fmt.Errorf("%w: swarm ID %q is not 52 lower-case base32 characters", ErrInvalid, s)
	}
	b, err := idEncoding.DecodeString(strings.ToUpper(s))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: swarm ID %q is not 52 lower-case base32 characters", ErrInvalid, s)
	}
	copy(id[:], b)
	if id.String() != s {
		return ID{}, fmt.Errorf("%w: swarm ID %q is not canonical", ErrInvalid, s)
	}
	return id, nil
}

// DeriveID computes the swarm ID of a genesis with this name, creation time
// and admin fingerprints (in document order): SHA-256 over the text
//
//	annex-swarm genesis 1\n
//	swarm NAME\n
//	created CREATED\n
//	admin FINGERPRINT\n   (one line per admin)
//
// where CREATED is RFC 3339 in UTC with nanoseconds as needed and
// FINGERPRINT is upper-case hex. Only the genesis's own admins can sign a
// genesis with a given ID, since the fingerprints bind their keys.
func DeriveID(swarm string, created time.Time, adminFingerprints []string) ID {
	var b strings.Builder
	fmt.Fprintf(&b, "annex-swarm genesis %d\n", Format)
	fmt.Fprintf(&b, "swarm %s\n", swarm)
	fmt.Fprintf(&b, "created %s\n", formatTime(created))
	for _, f := range adminFingerprints {
		fmt.Fprintf(&b, "admin %s\n", normalizeFingerprint(f))
	}
	return sha256.Sum256([]byte(b.String()))
}

// genesisID is DeriveID over d's own fields.
func (d *Definition) genesisID() ID {
	fprs := make([]string, len(d.Admins))
	for i, a := range d.Admins {
		fprs[i] = a.Fingerprint
	}
	return DeriveID(d.Swarm, d.Created, fprs)
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func normalizeFingerprint(f string) string {
	return strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(f), " ", ""))
}
