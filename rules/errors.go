package rules

import "errors"

// Sentinel errors. Every rejection of a document wraps exactly one of these,
// so callers can tell the reasons apart with errors.Is; the wrapped message
// adds the detail (line, field, key). See docs/RULES.md#rejections.
var (
	// ErrTooLarge is returned for a document, or a part of one, over its size bound.
	ErrTooLarge = errors.New("rules: document too large")
	// ErrNotSigned is returned for a document that is not an OpenPGP clear-signed message.
	ErrNotSigned = errors.New("rules: not a clear-signed document (missing signature)")
	// ErrArmor is returned for a clear-signed message whose armor is truncated or
	// malformed, or that has data outside the signed block.
	ErrArmor = errors.New("rules: truncated or malformed armor")
	// ErrBadSignature is returned when the signature does not verify: the body
	// was changed after signing, or the signature itself is damaged or unacceptable.
	ErrBadSignature = errors.New("rules: bad signature (tampered body or damaged signature)")
	// ErrNotAdmin is returned when the signing key is not an admin key of the
	// definition that has authority over the document.
	ErrNotAdmin = errors.New("rules: signed by a key that is not an admin")
	// ErrSwarmID is returned when a document belongs to another swarm, or a
	// genesis does not hash to the swarm ID it claims.
	ErrSwarmID = errors.New("rules: swarm ID mismatch")
	// ErrReplay is returned for a version equal to or older than the current one.
	ErrReplay = errors.New("rules: version not newer than the current one")
	// ErrSyntax is returned for a body that is not valid TOML.
	ErrSyntax = errors.New("rules: syntax error")
	// ErrUnknownField is returned for a key the format does not define.
	ErrUnknownField = errors.New("rules: unknown field")
	// ErrPeerID is returned for a member whose peer ID is malformed.
	ErrPeerID = errors.New("rules: malformed peer ID")
	// ErrMultiaddr is returned for a member address that is not a valid multiaddr.
	ErrMultiaddr = errors.New("rules: malformed multiaddr")
	// ErrDuplicateMember is returned when two member entries share a peer ID or a name.
	ErrDuplicateMember = errors.New("rules: member listed twice")
	// ErrInvalid is returned for any other field that breaks the format's rules
	// (missing value, bad range, copies_min above copies, bad admin key, ...).
	ErrInvalid = errors.New("rules: invalid definition")
	// ErrSecretKey is returned when a signing key file cannot be used: not a
	// secret key, no signing capability, or a wrong or missing passphrase.
	ErrSecretKey = errors.New("rules: unusable secret key")
	// ErrNotFound is returned by edits that name a member or admin the
	// definition does not list.
	ErrNotFound = errors.New("rules: no such entry")
)
