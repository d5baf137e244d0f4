package rules

import (
	"fmt"
	"strconv"
	"strings"
)

// The erasure-coding policy (docs/RULES.md#format-2-erasure-coding and
// docs/ERASURE.md#thresholds).

// MaxShards bounds data + parity. Every shard of a content goes to its own
// storage member, every chunk entry of a coded manifest lists one 36-byte
// CID per shard (at 32 shards a manifest still describes some 7 GiB), and a
// holder's set of shard indexes fits in a uint32.
const MaxShards = 32

// DefaultErasureMinSize is the erasure min_size a scheme gets unless told
// otherwise: contents under 1 MiB (the chunker's average chunk) stay
// replicated (docs/ERASURE.md#small-contents).
const DefaultErasureMinSize = 1 << 20

// Enabled reports whether e is a scheme rather than none.
func (e Erasure) Enabled() bool { return e != Erasure{} }

// Shards returns data + parity, the shards of every chunk.
func (e Erasure) Shards() int { return e.Data + e.Parity }

// String returns the scheme as written in `rules set`: "4+2", or "none".
func (e Erasure) String() string {
	if !e.Enabled() {
		return "none"
	}
	return fmt.Sprintf("%d+%d", e.Data, e.Parity)
}

// ParseErasure parses "K+M" (K data and M parity shards) or "none". A scheme
// gets DefaultErasureMinSize.
func ParseErasure(s string) (Erasure, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return Erasure{}, nil
	}
	ks, ms, ok := strings.Cut(s, "+")
	k, kerr := strconv.Atoi(strings.TrimSpace(ks))
	m, merr := strconv.Atoi(strings.TrimSpace(ms))
	if len(s) > 16 || !ok || kerr != nil || merr != nil {
		return Erasure{}, fmt.Errorf("%w: erasure=%q: want K+M (data+parity shards, like 4+2) or none", ErrInvalid, s)
	}
	e := Erasure{Data: k, Parity: m, MinSize: DefaultErasureMinSize}
	if err := e.validate(); err != nil {
		return Erasure{}, err
	}
	return e, nil
}

// validate checks the bounds of docs/RULES.md#format-2-erasure-coding.
func (e Erasure) validate() error {
	switch {
	case !e.Enabled():
		return nil
	case e.Data < 1 || e.Data > MaxShards:
		return fmt.Errorf("%w: replication.erasure.data = %d, want 1 to %d", ErrInvalid, e.Data, MaxShards-1)
	case e.Parity < 1 || e.Parity > MaxShards:
		return fmt.Errorf("%w: replication.erasure.parity = %d, want 1 or more (a lost member must not lose the content)", ErrInvalid, e.Parity)
	case e.Shards() > MaxShards:
		return fmt.Errorf("%w: replication.erasure = %s: data + parity = %d, the bound is %d", ErrInvalid, e, e.Shards(), MaxShards)
	case e.MinSize < 0:
		return fmt.Errorf("%w: replication.erasure.min_size = %d, want 0 or more", ErrInvalid, e.MinSize)
	}
	return nil
}

// set applies `rules set` erasure=K+M|none or erasure_min_size=SIZE.
func (e *Erasure) set(key, value string) error {
	if key == "erasure" {
		n, err := ParseErasure(value)
		if err != nil {
			return err
		}
		if n.Enabled() && e.Enabled() {
			n.MinSize = e.MinSize // a new scheme keeps the threshold already set
		}
		*e = n
		return nil
	}
	if !e.Enabled() {
		return fmt.Errorf("%w: erasure_min_size=%q: set erasure=K+M first", ErrInvalid, value)
	}
	n, err := ParseSize(value)
	if err != nil {
		return fmt.Errorf("%w: erasure_min_size: %v", ErrInvalid, err)
	}
	e.MinSize = n
	return nil
}

// encode writes the [replication.erasure] table. Without a scheme it writes
// exactly what format 1 always wrote, so that such documents stay readable by
// daemons that know only format 1.
func (e Erasure) encode(b *strings.Builder) {
	if !e.Enabled() {
		b.WriteString("\n[replication.erasure] # reserved\n")
		fmt.Fprintf(b, "data = %d\n", e.Data)
		fmt.Fprintf(b, "parity = %d\n", e.Parity)
		return
	}
	b.WriteString("\n[replication.erasure]\n")
	fmt.Fprintf(b, "data = %d\n", e.Data)
	fmt.Fprintf(b, "parity = %d\n", e.Parity)
	fmt.Fprintf(b, "min_size = %s\n", tomlQuote(FormatSize(e.MinSize)))
}

// erasure converts the written table of a document of the given format:
// format 1 MUST leave it zero (the reserved layout), format 2 MUST set it.
func (f fileErasure) erasure(format int64) (Erasure, error) {
	set := f.Data != 0 || f.Parity != 0 || f.MinSize != nil
	if format == Format {
		if set {
			return Erasure{}, fmt.Errorf("%w: replication.erasure is reserved in format %d (data and parity 0): a scheme needs format = %d", ErrInvalid, Format, FormatErasure)
		}
		return Erasure{}, nil
	}
	if f.Data == 0 && f.Parity == 0 {
		return Erasure{}, fmt.Errorf("%w: format = %d needs replication.erasure data and parity (write format = %d for replication only)", ErrInvalid, FormatErasure, Format)
	}
	if f.Data < 1 || f.Data > MaxShards || f.Parity < 1 || f.Parity > MaxShards {
		return Erasure{}, fmt.Errorf("%w: replication.erasure = %d+%d: want data >= 1, parity >= 1, data + parity <= %d", ErrInvalid, f.Data, f.Parity, MaxShards)
	}
	e := Erasure{Data: int(f.Data), Parity: int(f.Parity), MinSize: DefaultErasureMinSize}
	if f.MinSize != nil {
		n, err := ParseSize(*f.MinSize)
		if err != nil {
			return Erasure{}, fmt.Errorf("%w: replication.erasure.min_size: %v", ErrInvalid, err)
		}
		e.MinSize = n
	}
	return e, e.validate()
}

// Coded reports whether a content of size bytes is erasure-coded under r
// (a scheme is set and size >= its MinSize); otherwise it is replicated.
func (r Replication) Coded(size int64) bool {
	return r.Erasure.Enabled() && size >= r.Erasure.MinSize
}

// Thresholds are the shard counts that govern one coded content
// (docs/ERASURE.md#thresholds). Each counts distinct storage members that
// hold distinct shard indexes of every chunk.
type Thresholds struct {
	// Needed is the number of shards that rebuild the content: Data.
	Needed int
	// Success is the number a put needs before it reports success:
	// Needed + clamp(copies_min - 1, 1, Parity), so that a successful put
	// always survives the loss of one member.
	Success int
	// Repair is the number below which the content is repaired once a shard
	// has been missing for repair_after; it equals Success.
	Repair int
	// Target is the number a put places and a repair restores: Data + Parity.
	Target int
}

// Thresholds returns the thresholds of coded contents under r; the zero
// value when r has no erasure scheme.
func (r Replication) Thresholds() Thresholds {
	e := r.Erasure
	if !e.Enabled() {
		return Thresholds{}
	}
	margin := min(max(r.CopiesMin-1, 1), e.Parity)
	return Thresholds{Needed: e.Data, Success: e.Data + margin, Repair: e.Data + margin, Target: e.Shards()}
}
