// Package rules holds the swarm definition: members, roles, groups, limits and
// the replication policy; its parsing, validation, OpenPGP clear-signing and
// verification, and the version chain. See docs/RULES.md.
//
// # Reading
//
// Parse reads a TOML body; Verify, VerifyGenesis and (*Definition).VerifyNext
// read clear-signed documents from outside and are the only way a daemon
// should accept one. Every refusal wraps one of the sentinel errors (ErrNotAdmin,
// ErrReplay, ...), and a refused document never changes the current definition.
//
// # Writing
//
// Create makes a genesis; (*Definition).Next starts the next version, which
// AddMember, RemoveMember, AddAdmin, RemoveAdmin and Set edit; (*Signer).Sign
// checks the result against its authority and clear-signs it. Encode gives
// the canonical body.
//
// # Sizes
//
// ParseSize, ParseRate, FormatSize and FormatRate read and write the human
// sizes ("50GiB") and rates ("16MiB/s") of member limits and config.toml.
package rules
