package annexremote

import (
	"context"
	"errors"
)

// Backend does the storage work behind the protocol. Serve calls it; it never
// sees protocol lines. Methods may be called concurrently for different
// async jobs (docs/ANNEX-REMOTE.md "Async jobs"), and each MUST return
// promptly once ctx is done.
type Backend interface {
	// InitRemote sets the remote up. git-annex sends INITREMOTE for
	// `git annex initremote` and again for `enableremote` in another clone,
	// so it MUST be idempotent. cfg is valid only during the call.
	InitRemote(ctx context.Context, cfg Config) error
	// Prepare readies the remote for use (e.g. connects to the daemon). Serve
	// calls it until it succeeds once, then answers later PREPAREs itself.
	// cfg is valid only during the call.
	Prepare(ctx context.Context, cfg Config) error
	// Store stores the content of file (an absolute path) under key.
	// progress takes the cumulative number of bytes done so far.
	Store(ctx context.Context, key, file string, progress ProgressFunc) error
	// Retrieve writes the content of key to file (an absolute path).
	Retrieve(ctx context.Context, key, file string, progress ProgressFunc) error
	// CheckPresent says whether the remote holds key. It MUST answer Unknown
	// (or return an error, which Serve reports as unknown) whenever it cannot
	// be sure the content is absent: Absent lets git-annex forget a copy.
	CheckPresent(ctx context.Context, key string) (Presence, error)
	// Remove removes key. Content that is already absent is not an error:
	// Remove returns nil then, so that git-annex records it as gone.
	Remove(ctx context.Context, key string) error
	// Whereis returns a short human-readable location of key (e.g. the
	// holders' names), or "" when there is nothing to say.
	Whereis(ctx context.Context, key string) (string, error)
	// Info returns fields shown by `git annex info REMOTE`.
	Info(ctx context.Context) ([]InfoField, error)
}

// ProgressFunc reports the cumulative number of bytes transferred. It is safe
// to call from several goroutines and as often as wanted: Serve rate-limits
// the PROGRESS lines it sends.
type ProgressFunc func(bytes int64)

// Config is the channel to git-annex that a Backend gets during InitRemote
// and Prepare. Each call is a round trip on the protocol, routed to the job
// that made the request. A Config MUST NOT be used after the call it was
// passed to has returned; it then fails with ErrConfigExpired.
type Config interface {
	// Get returns the value of a setting given to initremote or
	// enableremote (GETCONFIG); "" when it is not set.
	Get(ctx context.Context, name string) (string, error)
	// Set stores a setting in the remote's configuration (SETCONFIG). It is
	// recorded by git-annex only during InitRemote.
	Set(ctx context.Context, name, value string) error
	// GitRemoteName returns the name of the git remote (GETGITREMOTENAME), or
	// ErrUnsupported when git-annex did not offer that extension.
	GitRemoteName(ctx context.Context) (string, error)
	// UUID returns the remote's git-annex UUID (GETUUID).
	UUID(ctx context.Context) (string, error)
	// Info shows a message to the user (INFO when git-annex offered the INFO
	// extension, else DEBUG).
	Info(ctx context.Context, msg string) error
}

// Sentinel errors of the Config channel.
var (
	// ErrConfigExpired is returned by a Config used after its call returned.
	ErrConfigExpired = errors.New("annexremote: config used after its request ended")
	// ErrUnsupported is returned for a request git-annex did not offer.
	ErrUnsupported = errors.New("annexremote: not supported by this git-annex")
	// ErrAnnexError wraps an ERROR message received from git-annex; Serve
	// stops when it sees one.
	ErrAnnexError = errors.New("annexremote: git-annex sent ERROR")
	// ErrProtocol is returned by Serve when git-annex breaks the protocol
	// (a line for a busy job, an unexpected reply, too many jobs).
	ErrProtocol = errors.New("annexremote: protocol violation")
)

// ConfigSetting is one setting announced by LISTCONFIGS, which git-annex
// then accepts on `git annex initremote NAME type=external ... NAME=VALUE`.
type ConfigSetting struct {
	Name        string // one word, no spaces
	Description string // one line
}

// InfoField is one line of GETINFO's answer.
type InfoField struct {
	Name  string
	Value string
}

// Presence is the answer to CHECKPRESENT: Present, Absent or Unknown(reason).
type Presence struct {
	state  presenceState
	reason string
}

type presenceState uint8

const (
	stateUnknown presenceState = iota
	statePresent
	stateAbsent
)

// Present means the remote holds the content (CHECKPRESENT-SUCCESS).
var Present = Presence{state: statePresent}

// Absent means the remote knows it does not hold the content
// (CHECKPRESENT-FAILURE).
var Absent = Presence{state: stateAbsent}

// Unknown means the remote cannot tell (CHECKPRESENT-UNKNOWN reason). The
// zero Presence is Unknown too.
func Unknown(reason string) Presence { return Presence{reason: reason} }

// String returns "present", "absent" or "unknown: reason".
func (p Presence) String() string {
	switch p.state {
	case statePresent:
		return "present"
	case stateAbsent:
		return "absent"
	}
	return "unknown: " + p.reason
}

// Availability is the answer to GETAVAILABILITY.
type Availability string

// Availability values.
const (
	// Global: the remote is reachable from other hosts too.
	Global Availability = "GLOBAL"
	// Local: the remote is reachable only from this host.
	Local Availability = "LOCAL"
)
