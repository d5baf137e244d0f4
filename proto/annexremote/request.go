package annexremote

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Request parsing, as specified in docs/ANNEX-REMOTE.md sections "Lines" and
// "Async jobs".

// MaxJobID bounds the job number of an async "J n" prefix.
const MaxJobID = 1<<31 - 1

// ErrMalformed is returned by ParseRequest for a line that is not a
// well-formed request: empty, a command word that is not upper-case ASCII,
// or a "J" prefix without a canonical job number and a message after it.
var ErrMalformed = errors.New("annexremote: malformed request")

// Request is one line sent by git-annex, split into its parts.
type Request struct {
	// Job is the async job number from a "J n " prefix, 0 when the line has
	// no prefix.
	Job int
	// Name is the command word, e.g. "TRANSFER" or "VALUE".
	Name string
	// Args is everything after the space that follows Name; it may itself
	// contain spaces (a file name) and may be empty.
	Args string
}

// ParseRequest splits a line read from git-annex. It does not check that
// Name is a known command nor how many arguments it has.
func ParseRequest(line string) (Request, error) {
	var r Request
	if rest, ok := strings.CutPrefix(line, "J "); ok {
		num, msg, found := strings.Cut(rest, " ")
		if !found {
			return Request{}, fmt.Errorf("parsing %.40q: job prefix without message: %w", line, ErrMalformed)
		}
		n, err := parseJobID(num)
		if err != nil {
			return Request{}, fmt.Errorf("parsing %.40q: %w", line, err)
		}
		r.Job, line = n, msg
	}
	name, args, _ := strings.Cut(line, " ")
	if !validName(name) {
		return Request{}, fmt.Errorf("parsing %.40q: command %.20q: %w", line, name, ErrMalformed)
	}
	r.Name, r.Args = name, args
	return r, nil
}

// parseJobID accepts only the canonical decimal form of 1..MaxJobID, so that
// a job number has one spelling.
func parseJobID(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > MaxJobID || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("job number %.20q: %w", s, ErrMalformed)
	}
	return n, nil
}

// validName reports whether s is a command word: 1 to 64 bytes of A-Z, 0-9,
// "-" and "_", starting with a letter.
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// String formats r as a protocol line (without line ending); it is the
// inverse of ParseRequest.
func (r Request) String() string {
	var b strings.Builder
	if r.Job != 0 {
		b.WriteString("J ")
		b.WriteString(strconv.Itoa(r.Job))
		b.WriteByte(' ')
	}
	b.WriteString(r.Name)
	if r.Args != "" {
		b.WriteByte(' ')
		b.WriteString(r.Args)
	}
	return b.String()
}

// splitArgs splits args into exactly n fields separated by single spaces;
// the last field is the rest of the line and may contain spaces or be empty.
func splitArgs(args string, n int) ([]string, bool) {
	f := strings.SplitN(args, " ", n)
	if len(f) != n {
		return nil, false
	}
	for _, s := range f[:n-1] {
		if s == "" {
			return nil, false
		}
	}
	return f, true
}
