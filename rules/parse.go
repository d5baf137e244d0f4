package rules

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	ma "github.com/multiformats/go-multiaddr"
)

// fileDoc is the TOML body as written (docs/RULES.md#fields); it is converted
// to a Definition at the boundary.
type fileDoc struct {
	Format      int64           `toml:"format"`
	Swarm       string          `toml:"swarm"`
	ID          string          `toml:"id"`
	Version     int64           `toml:"version"`
	Created     string          `toml:"created"`
	Replication fileReplication `toml:"replication"`
	Admin       []fileAdmin     `toml:"admin"`
	Member      []fileMember    `toml:"member"`
}

type fileReplication struct {
	Copies      int64       `toml:"copies"`
	CopiesMin   int64       `toml:"copies_min"`
	RepairAfter string      `toml:"repair_after"`
	Erasure     fileErasure `toml:"erasure"`
}

type fileErasure struct {
	Data    int64   `toml:"data"`
	Parity  int64   `toml:"parity"`
	MinSize *string `toml:"min_size"`
}

type fileAdmin struct {
	Name        string `toml:"name"`
	Fingerprint string `toml:"fingerprint"`
	Key         string `toml:"key"`
}

type fileMember struct {
	Name     string   `toml:"name"`
	Peer     string   `toml:"peer"`
	Addrs    []string `toml:"addrs"`
	Role     string   `toml:"role"`
	Groups   []string `toml:"groups"`
	Storage  string   `toml:"storage"`
	Upload   string   `toml:"upload"`
	Download string   `toml:"download"`
}

// maxRepairAfter bounds repair_after.
const maxRepairAfter = 366 * 24 * time.Hour

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// Parse parses and validates the TOML body of a definition (the text inside
// the clear-signed message). It checks the format only, not any signature:
// use Verify and VerifyNext for documents from outside.
func Parse(body []byte) (*Definition, error) {
	if len(body) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: body is %d bytes, the bound is %d", ErrTooLarge, len(body), MaxDocumentSize)
	}
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: body is not UTF-8", ErrSyntax)
	}
	var f fileDoc
	md, err := toml.NewDecoder(bytes.NewReader(body)).Decode(&f)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%w: line %d: %s", ErrSyntax, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%w: %s", ErrSyntax, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, fmt.Errorf("%w: line %d: %q", ErrUnknownField, keyLine(body, und[0]), und[0].String())
	}
	d, err := f.definition()
	if err != nil {
		return nil, err
	}
	return d, nil
}

// keyLine finds the line where key k first appears, as "name =" or in a
// table header; 0 if not found.
func keyLine(body []byte, k toml.Key) int {
	last := k[len(k)-1]
	for i, line := range strings.Split(string(body), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") {
			if strings.Contains(l, last) {
				return i + 1
			}
			continue
		}
		for _, form := range []string{last, `"` + last + `"`, `'` + last + `'`} {
			if rest, ok := strings.CutPrefix(l, form); ok {
				rest = strings.TrimSpace(rest)
				if strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, ".") {
					return i + 1
				}
			}
		}
	}
	return 0
}

// definition converts and validates the written form.
func (f *fileDoc) definition() (*Definition, error) {
	if f.Format != Format && f.Format != FormatErasure {
		return nil, fmt.Errorf("%w: format = %d, this program reads formats %d and %d", ErrInvalid, f.Format, Format, FormatErasure)
	}
	d := &Definition{Swarm: f.Swarm, Version: f.Version}
	var err error
	if d.ID, err = ParseID(f.ID); err != nil {
		return nil, fmt.Errorf("id: %w", err)
	}
	if d.Created, err = time.Parse(time.RFC3339Nano, f.Created); err != nil || formatTime(d.Created) != f.Created {
		return nil, fmt.Errorf("%w: created = %q: want an RFC 3339 UTC time like 2025-01-02T03:04:05Z", ErrInvalid, f.Created)
	}
	d.Created = d.Created.UTC()
	r := f.Replication
	if r.Copies < 0 || r.Copies > MaxCopies || r.CopiesMin < 0 || r.CopiesMin > MaxCopies {
		return nil, fmt.Errorf("%w: replication: copies and copies_min must be between 1 and %d", ErrInvalid, MaxCopies)
	}
	d.Replication = Replication{Copies: int(r.Copies), CopiesMin: int(r.CopiesMin)}
	if d.Replication.Erasure, err = r.Erasure.erasure(f.Format); err != nil {
		return nil, err
	}
	if d.Replication.RepairAfter, err = time.ParseDuration(r.RepairAfter); err != nil {
		return nil, fmt.Errorf("%w: replication.repair_after = %q: want a duration like 1h or 30m", ErrInvalid, r.RepairAfter)
	}
	if len(f.Admin) > MaxAdmins {
		return nil, fmt.Errorf("%w: %d admins, the bound is %d", ErrTooLarge, len(f.Admin), MaxAdmins)
	}
	for i, fa := range f.Admin {
		a, _, err := parseAdmin(fa.Name, fa.Fingerprint, fa.Key)
		if err != nil {
			return nil, fmt.Errorf("admin %d: %w", i+1, err)
		}
		d.Admins = append(d.Admins, a)
	}
	if len(f.Member) > MaxMembers {
		return nil, fmt.Errorf("%w: %d members, the bound is %d", ErrTooLarge, len(f.Member), MaxMembers)
	}
	for i, fm := range f.Member {
		m, err := fm.member()
		if err != nil {
			return nil, fmt.Errorf("member %d (%q): %w", i+1, fm.Name, err)
		}
		d.Members = append(d.Members, m)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

func (fm *fileMember) member() (Member, error) {
	m := Member{Name: fm.Name, Role: Role(fm.Role), Groups: fm.Groups}
	p, err := DecodePeerID(fm.Peer)
	if err != nil {
		return m, fmt.Errorf("%w: peer = %q: %v", ErrPeerID, fm.Peer, err)
	}
	m.Peer = p
	if len(fm.Addrs) > MaxAddrs {
		return m, fmt.Errorf("%w: %d addrs, the bound is %d", ErrTooLarge, len(fm.Addrs), MaxAddrs)
	}
	for _, s := range fm.Addrs {
		a, err := ParseAddr(s, p)
		if err != nil {
			return m, err
		}
		m.Addrs = append(m.Addrs, a)
	}
	if fm.Storage != "" {
		if m.Limits.Storage, err = ParseSize(fm.Storage); err != nil {
			return m, fmt.Errorf("%w: storage: %v", ErrInvalid, err)
		}
	}
	if fm.Upload != "" {
		if m.Limits.Upload, err = ParseRate(fm.Upload); err != nil {
			return m, fmt.Errorf("%w: upload: %v", ErrInvalid, err)
		}
	}
	if fm.Download != "" {
		if m.Limits.Download, err = ParseRate(fm.Download); err != nil {
			return m, fmt.Errorf("%w: download: %v", ErrInvalid, err)
		}
	}
	if (fm.Storage != "" && m.Limits.Storage == 0) || (fm.Upload != "" && m.Limits.Upload == 0) || (fm.Download != "" && m.Limits.Download == 0) {
		return m, fmt.Errorf("%w: a limit of zero is not allowed; leave it out for unlimited", ErrInvalid)
	}
	return m, nil
}

// ParseAddr parses a member address for peer p. A trailing /p2p/ component
// must name p and is dropped; the address must be in canonical form.
func ParseAddr(s string, p PeerID) (ma.Multiaddr, error) {
	a, err := ma.NewMultiaddr(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrMultiaddr, s, err)
	}
	if again, err := ma.NewMultiaddr(a.String()); err != nil || !again.Equal(a) {
		return nil, fmt.Errorf("%w: %q does not survive a round trip", ErrMultiaddr, s)
	}
	transport, id := splitP2P(a)
	if id != "" && id != p {
		return nil, fmt.Errorf("%w: %q names peer %s, not %s", ErrMultiaddr, s, id, p)
	}
	if transport == nil || len(transport) == 0 {
		return nil, fmt.Errorf("%w: %q has no transport part", ErrMultiaddr, s)
	}
	return transport, nil
}

// parseAdmin checks an admin entry: the key must be one armored OpenPGP
// public key whose primary fingerprint is fpr.
func parseAdmin(name, fpr, key string) (Admin, *openpgp.Entity, error) {
	a := Admin{Name: name, Fingerprint: normalizeFingerprint(fpr), Key: normalizeArmor(key)}
	if len(key) > MaxAdminKeySize {
		return a, nil, fmt.Errorf("%w: key is %d bytes, the bound is %d", ErrTooLarge, len(key), MaxAdminKeySize)
	}
	if err := checkLabel(name); err != nil {
		return a, nil, fmt.Errorf("name: %w", err)
	}
	for _, r := range a.Key {
		if r != '\n' && (r < 0x20 || r > 0x7e || r == '"' || r == '\\') {
			return a, nil, fmt.Errorf("%w: key holds a character that armor never has (%q)", ErrInvalid, r)
		}
	}
	e, err := readPublicKey(a.Key)
	if err != nil {
		return a, nil, err
	}
	if got := fingerprint(e); got != a.Fingerprint {
		return a, nil, fmt.Errorf("%w: fingerprint = %q but the key's is %s", ErrInvalid, fpr, got)
	}
	return a, e, nil
}

// readPublicKey reads exactly one armored public key.
func readPublicKey(armored string) (*openpgp.Entity, error) {
	block, err := armor.Decode(strings.NewReader(armored))
	if err != nil {
		return nil, fmt.Errorf("%w: key is not armored: %v", ErrInvalid, err)
	}
	if block.Type != openpgp.PublicKeyType {
		return nil, fmt.Errorf("%w: key is a %q, want a %q", ErrInvalid, block.Type, openpgp.PublicKeyType)
	}
	el, err := openpgp.ReadKeyRing(block.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading key: %v", ErrInvalid, err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: key block holds %d keys, want 1", ErrInvalid, len(el))
	}
	if el[0].PrivateKey != nil {
		return nil, fmt.Errorf("%w: key block holds secret key material", ErrInvalid)
	}
	return el[0], nil
}

func fingerprint(e *openpgp.Entity) string {
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}

// normalizeArmor trims each line's trailing white space (clear-signing does
// the same) and blank lines around the block.
func normalizeArmor(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// checkName checks a swarm, member or group name.
func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNameLen || !nameRE.MatchString(s) {
		return fmt.Errorf("%w: name %q: want 1 to %d of A-Z a-z 0-9 . _ -, starting with a letter or digit", ErrInvalid, s, MaxNameLen)
	}
	return nil
}

// checkLabel checks a free-text label such as an admin's name.
func checkLabel(s string) error {
	if len(s) > 128 || !utf8.ValidString(s) {
		return fmt.Errorf("%w: %q: want at most 128 bytes of UTF-8", ErrInvalid, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q holds a control character", ErrInvalid, s)
		}
	}
	return nil
}
