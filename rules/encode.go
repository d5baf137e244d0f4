package rules

import (
	"fmt"
	"strings"
	"time"
)

// Encode returns the canonical TOML body of d (docs/RULES.md#canonical-form):
// fixed key order, one key per line, no trailing white space, limits in
// FormatSize/FormatRate form. Parse(Encode(d)) gives back d, and Encode is
// what Sign signs. It does not validate d; Sign does.
func (d *Definition) Encode() []byte {
	var b strings.Builder
	format := Format
	if d.Replication.Erasure.Enabled() {
		format = FormatErasure
	}
	fmt.Fprintf(&b, "# annex-swarm swarm definition, format %d (docs/RULES.md)\n", format)
	fmt.Fprintf(&b, "format = %d\n", format)
	fmt.Fprintf(&b, "swarm = %s\n", tomlQuote(d.Swarm))
	fmt.Fprintf(&b, "id = %s\n", tomlQuote(d.ID.String()))
	fmt.Fprintf(&b, "version = %d\n", d.Version)
	fmt.Fprintf(&b, "created = %s\n", tomlQuote(formatTime(d.Created)))
	r := d.Replication
	b.WriteString("\n[replication]\n")
	fmt.Fprintf(&b, "copies = %d\n", r.Copies)
	fmt.Fprintf(&b, "copies_min = %d\n", r.CopiesMin)
	fmt.Fprintf(&b, "repair_after = %s\n", tomlQuote(formatDuration(r.RepairAfter)))
	r.Erasure.encode(&b)
	for _, a := range d.Admins {
		b.WriteString("\n[[admin]]\n")
		if a.Name != "" {
			fmt.Fprintf(&b, "name = %s\n", tomlQuote(a.Name))
		}
		fmt.Fprintf(&b, "fingerprint = %s\n", tomlQuote(a.Fingerprint))
		fmt.Fprintf(&b, "key = \"\"\"\n%s\n\"\"\"\n", a.Key)
	}
	for _, m := range d.Members {
		b.WriteString("\n[[member]]\n")
		fmt.Fprintf(&b, "name = %s\n", tomlQuote(m.Name))
		fmt.Fprintf(&b, "peer = %s\n", tomlQuote(m.Peer.String()))
		addrs := make([]string, len(m.Addrs))
		for i, a := range m.Addrs {
			addrs[i] = a.String()
		}
		fmt.Fprintf(&b, "addrs = %s\n", tomlList(addrs))
		fmt.Fprintf(&b, "role = %s\n", tomlQuote(string(m.Role)))
		if len(m.Groups) > 0 {
			fmt.Fprintf(&b, "groups = %s\n", tomlList(m.Groups))
		}
		if m.Limits.Storage > 0 {
			fmt.Fprintf(&b, "storage = %s\n", tomlQuote(FormatSize(m.Limits.Storage)))
		}
		if m.Limits.Upload > 0 {
			fmt.Fprintf(&b, "upload = %s\n", tomlQuote(FormatRate(m.Limits.Upload)))
		}
		if m.Limits.Download > 0 {
			fmt.Fprintf(&b, "download = %s\n", tomlQuote(FormatRate(m.Limits.Download)))
		}
	}
	return []byte(b.String())
}

// tomlQuote writes s as a TOML basic string.
func tomlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func tomlList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = tomlQuote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// formatDuration writes d as time.Duration.String does, without zero
// trailing units: 1h, 1h30m, 90s, 1.5s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
