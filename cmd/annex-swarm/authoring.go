package main

// The offline authoring commands: keys, the genesis, members, admins and the
// policy (docs/RULES.md#authoring). They need no daemon; the logic is in
// package rules, and this file only parses flags, reads and writes files.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/term"

	"github.com/annex-swarm/annex-swarm/internal/atomicfile"
	"github.com/annex-swarm/annex-swarm/rules"
)

// stringList is a flag that may be given many times.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

// runKey is `annex-swarm key generate|public`.
func runKey(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, args := subcommand(args)
	switch sub {
	case "generate":
		fs := flag.NewFlagSet("key generate", flag.ContinueOnError)
		name := fs.String("name", "", "user ID of the new key")
		out := fs.String("o", "", "file to write the armored secret key to")
		passFile := fs.String("passphrase-file", "", "protect the key with the first line of this file")
		pos, err := parseArgs(fs, args)
		if err != nil || len(pos) != 0 || *name == "" || *out == "" {
			return usageError(stderr, "key generate", "usage: annex-swarm key generate --name NAME -o KEYFILE [--passphrase-file FILE]")
		}
		var pass []byte
		if _, set := os.LookupEnv(rules.PassphraseEnv); set || *passFile != "" {
			if pass, err = rules.NewPassphrase(*passFile, nil)(); err != nil {
				return fail(stderr, "key generate", err)
			}
		}
		if err := refuseExisting(*out); err != nil {
			return fail(stderr, "key generate", err)
		}
		armored, err := rules.GenerateKey(*name, pass)
		if err != nil {
			return fail(stderr, "key generate", err)
		}
		s, err := rules.ReadSigner(bytes.NewReader(armored), func() ([]byte, error) { return pass, nil })
		if err != nil {
			return fail(stderr, "key generate", err)
		}
		if err := atomicfile.WriteFile(*out, armored, 0o600); err != nil {
			return fail(stderr, "key generate", err)
		}
		fmt.Fprintln(stdout, s.Fingerprint())
		return 0
	case "public":
		fs := flag.NewFlagSet("key public", flag.ContinueOnError)
		pos, err := parseArgs(fs, args)
		if err != nil || len(pos) != 1 {
			return usageError(stderr, "key public", "usage: annex-swarm key public KEYFILE")
		}
		a, err := readAdmin(pos[0])
		if err != nil {
			return fail(stderr, "key public", err)
		}
		fmt.Fprintf(stdout, "%s\n", a.Key)
		return 0
	}
	return usageError(stderr, "key", "usage: annex-swarm key generate|public ...")
}

// runSwarm is `annex-swarm swarm create`.
func runSwarm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, args := subcommand(args)
	if sub != "create" {
		return usageError(stderr, "swarm", "usage: annex-swarm swarm create --name NAME --key KEYFILE [--copies N] [--copies-min M] -o RULES")
	}
	fs := flag.NewFlagSet("swarm create", flag.ContinueOnError)
	name := fs.String("name", "", "swarm name")
	keyFile := fs.String("key", "", "admin secret key")
	passFile := fs.String("passphrase-file", "", "file whose first line is the key's passphrase")
	copies := fs.Int("copies", rules.DefaultReplication.Copies, "target number of copies")
	copiesMin := fs.Int("copies-min", rules.DefaultReplication.CopiesMin, "copies needed before a store succeeds")
	repairAfter := fs.Duration("repair-after", rules.DefaultReplication.RepairAfter, "how long a missing copy waits before repair")
	out := fs.String("o", "", "file to write the signed definition to")
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 0 || *name == "" || *keyFile == "" || *out == "" {
		return usageError(stderr, "swarm create", "usage: annex-swarm swarm create --name NAME --key KEYFILE [--copies N] [--copies-min M] -o RULES")
	}
	if err := refuseExisting(*out); err != nil {
		return fail(stderr, "swarm create", err)
	}
	s, err := loadSigner(*keyFile, *passFile)
	if err != nil {
		return fail(stderr, "swarm create", err)
	}
	policy := rules.Replication{Copies: *copies, CopiesMin: *copiesMin, RepairAfter: *repairAfter}
	d, err := rules.Create(*name, s, policy, time.Now())
	if err != nil {
		return fail(stderr, "swarm create", err)
	}
	signed, err := s.Sign(d, nil)
	if err != nil {
		return fail(stderr, "swarm create", err)
	}
	if err := atomicfile.WriteFile(*out, signed, 0o644); err != nil {
		return fail(stderr, "swarm create", err)
	}
	fmt.Fprintf(stdout, "created swarm %s (id %s), version 1, in %s\n", d.Swarm, d.ID, *out)
	return 0
}

// runMember is `annex-swarm member add|remove`.
func runMember(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const addUsage = "usage: annex-swarm member add RULES --key KEYFILE --peer PEERID [--addr MULTIADDR]... [--name N] [--role storage|client] [--group G] [--storage SIZE] [--upload RATE] [--download RATE]"
	const removeUsage = "usage: annex-swarm member remove RULES --key KEYFILE --peer PEERID"
	sub, args := subcommand(args)
	fs := flag.NewFlagSet("member "+sub, flag.ContinueOnError)
	keyFile := fs.String("key", "", "admin secret key")
	passFile := fs.String("passphrase-file", "", "file whose first line is the key's passphrase")
	peerText := fs.String("peer", "", "the member's libp2p peer ID")
	switch sub {
	case "add":
		var addrs, groups stringList
		fs.Var(&addrs, "addr", "a multiaddr the member listens on (repeatable)")
		fs.Var(&groups, "group", "a group of the member (repeatable)")
		name := fs.String("name", "", "member name (default: the end of the peer ID)")
		role := fs.String("role", string(rules.RoleStorage), "storage or client")
		storage := fs.String("storage", "", "storage limit, like 50GiB")
		upload := fs.String("upload", "", "upload limit, like 16MiB/s")
		download := fs.String("download", "", "download limit, like 64MiB/s")
		pos, err := parseArgs(fs, args)
		if err != nil || len(pos) != 1 || *keyFile == "" || *peerText == "" {
			return usageError(stderr, "member add", addUsage)
		}
		m, err := memberFromFlags(*peerText, addrs, *name, *role, groups, *storage, *upload, *download)
		if err != nil {
			return fail(stderr, "member add", err)
		}
		return edit(stdout, stderr, "member add", pos[0], *keyFile, *passFile, func(d *rules.Definition) error {
			return d.AddMember(m)
		})
	case "remove":
		pos, err := parseArgs(fs, args)
		if err != nil || len(pos) != 1 || *keyFile == "" || *peerText == "" {
			return usageError(stderr, "member remove", removeUsage)
		}
		p, err := rules.DecodePeerID(*peerText)
		if err != nil {
			return fail(stderr, "member remove", fmt.Errorf("%w: %q: %v", rules.ErrPeerID, *peerText, err))
		}
		return edit(stdout, stderr, "member remove", pos[0], *keyFile, *passFile, func(d *rules.Definition) error {
			return d.RemoveMember(p)
		})
	}
	return usageError(stderr, "member", addUsage+"\n"+removeUsage)
}

// runAdmin is `annex-swarm admin add|remove`.
func runAdmin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const usage = "usage: annex-swarm admin add RULES --key KEYFILE --pubkey PUBFILE | admin remove RULES --key KEYFILE --fingerprint FPR"
	sub, args := subcommand(args)
	fs := flag.NewFlagSet("admin "+sub, flag.ContinueOnError)
	keyFile := fs.String("key", "", "admin secret key that signs the change")
	passFile := fs.String("passphrase-file", "", "file whose first line is the key's passphrase")
	pubFile := fs.String("pubkey", "", "armored public key of the new admin")
	fpr := fs.String("fingerprint", "", "fingerprint of the admin to remove")
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 || *keyFile == "" {
		return usageError(stderr, "admin", usage)
	}
	switch {
	case sub == "add" && *pubFile != "":
		a, err := readAdmin(*pubFile)
		if err != nil {
			return fail(stderr, "admin add", err)
		}
		return edit(stdout, stderr, "admin add", pos[0], *keyFile, *passFile, func(d *rules.Definition) error {
			return d.AddAdmin(a)
		})
	case sub == "remove" && *fpr != "":
		return edit(stdout, stderr, "admin remove", pos[0], *keyFile, *passFile, func(d *rules.Definition) error {
			return d.RemoveAdmin(*fpr)
		})
	}
	return usageError(stderr, "admin", usage)
}

// rulesCommand is `annex-swarm rules set|verify|push`; push, which needs the
// daemon, is handed to push.
func rulesCommand(push command) command {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) int {
		const usage = "usage: annex-swarm rules set RULES --key KEYFILE KEY=VALUE... | rules verify RULES | rules push RULES"
		sub, rest := subcommand(args)
		switch sub {
		case "push":
			if push == nil {
				return fail(stderr, "rules push", errors.New("not wired to the daemon in this build"))
			}
			return push(ctx, rest, stdout, stderr)
		case "verify":
			fs := flag.NewFlagSet("rules verify", flag.ContinueOnError)
			pos, err := parseArgs(fs, rest)
			if err != nil || len(pos) != 1 {
				return usageError(stderr, "rules verify", "usage: annex-swarm rules verify RULES")
			}
			d, err := readDefinition(pos[0])
			if err != nil {
				return fail(stderr, "rules verify", err)
			}
			fmt.Fprintf(stdout, "%s\nsigned by %s\n", d.Summary(), d.SignerFingerprint())
			for _, a := range d.Admins {
				fmt.Fprintf(stdout, "admin %s %s\n", a.Fingerprint, a.Name)
			}
			for _, m := range d.Members {
				fmt.Fprintf(stdout, "member %s %s %s\n", m.Name, m.Peer, m.Role)
			}
			return 0
		case "set":
			fs := flag.NewFlagSet("rules set", flag.ContinueOnError)
			keyFile := fs.String("key", "", "admin secret key")
			passFile := fs.String("passphrase-file", "", "file whose first line is the key's passphrase")
			pos, err := parseArgs(fs, rest)
			if err != nil || len(pos) < 2 || *keyFile == "" {
				return usageError(stderr, "rules set", "usage: annex-swarm rules set RULES --key KEYFILE copies=N copies_min=M repair_after=DURATION")
			}
			return edit(stdout, stderr, "rules set", pos[0], *keyFile, *passFile, func(d *rules.Definition) error {
				for _, a := range pos[1:] {
					if err := d.Set(a); err != nil {
						return err
					}
				}
				return nil
			})
		}
		return usageError(stderr, "rules", usage)
	}
}

// runRules is `annex-swarm rules set|verify|push`.
func (e *env) runRules(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return rulesCommand(e.runRulesPush)(ctx, args, stdout, stderr)
}

// edit reads RULES, applies change to the next version, signs it with the
// key and rewrites RULES atomically.
func edit(stdout, stderr io.Writer, cmd, rulesPath, keyFile, passFile string, change func(*rules.Definition) error) int {
	cur, err := readDefinition(rulesPath)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	s, err := loadSigner(keyFile, passFile)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	next := cur.Next()
	if err := change(next); err != nil {
		return fail(stderr, cmd, err)
	}
	signed, err := s.Sign(next, cur)
	if err != nil {
		return fail(stderr, cmd, err)
	}
	if err := atomicfile.WriteFile(rulesPath, signed, 0o644); err != nil {
		return fail(stderr, cmd, err)
	}
	fmt.Fprintf(stdout, "wrote version %d of swarm %s to %s\n", next.Version, next.Swarm, rulesPath)
	return 0
}

// memberFromFlags builds a member entry from the flags of member add.
func memberFromFlags(peerText string, addrs []string, name, role string, groups []string, storage, upload, download string) (rules.Member, error) {
	p, err := rules.DecodePeerID(peerText)
	if err != nil {
		return rules.Member{}, fmt.Errorf("%w: %q: %v", rules.ErrPeerID, peerText, err)
	}
	if name == "" {
		s := p.String()
		name = s[max(0, len(s)-8):]
	}
	m := rules.Member{Name: name, Peer: p, Role: rules.Role(role), Groups: groups}
	for _, s := range addrs {
		a, err := rules.ParseAddr(s, p)
		if err != nil {
			return m, err
		}
		m.Addrs = append(m.Addrs, a)
	}
	m.Addrs = dedupAddrs(m.Addrs)
	if storage != "" {
		if m.Limits.Storage, err = rules.ParseSize(storage); err != nil {
			return m, fmt.Errorf("--storage: %w", err)
		}
	}
	if upload != "" {
		if m.Limits.Upload, err = rules.ParseRate(upload); err != nil {
			return m, fmt.Errorf("--upload: %w", err)
		}
	}
	if download != "" {
		if m.Limits.Download, err = rules.ParseRate(download); err != nil {
			return m, fmt.Errorf("--download: %w", err)
		}
	}
	return m, nil
}

func dedupAddrs(in []ma.Multiaddr) []ma.Multiaddr {
	var out []ma.Multiaddr
	for _, a := range in {
		dup := false
		for _, o := range out {
			dup = dup || o.Equal(a)
		}
		if !dup {
			out = append(out, a)
		}
	}
	return out
}

// subcommand splits the first word off args.
func subcommand(args []string) (string, []string) {
	if len(args) == 0 {
		return "", nil
	}
	return args[0], args[1:]
}

// readDefinition reads and verifies a signed definition on its own.
func readDefinition(path string) (*rules.Definition, error) {
	signed, err := readRulesFile(path)
	if err != nil {
		return nil, err
	}
	d, err := rules.Verify(signed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return d, nil
}

// loadSigner reads an admin secret key, asking for its passphrase if needed.
func loadSigner(path, passFile string) (*rules.Signer, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening key: %w", err)
	}
	defer f.Close()
	s, err := rules.ReadSigner(f, rules.NewPassphrase(passFile, ttyPassphrase(path)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// readAdmin reads a public (or secret) key file as an admin entry.
func readAdmin(path string) (rules.Admin, error) {
	f, err := os.Open(path)
	if err != nil {
		return rules.Admin{}, fmt.Errorf("opening key: %w", err)
	}
	defer f.Close()
	a, err := rules.ReadAdmin(f)
	if err != nil {
		return a, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// ttyPassphrase asks for the passphrase of keyPath on the terminal.
func ttyPassphrase(keyPath string) rules.PassphraseFunc {
	return func() ([]byte, error) {
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, fmt.Errorf("%w: %s is protected: set %s, use --passphrase-file, or run on a terminal",
				rules.ErrSecretKey, keyPath, rules.PassphraseEnv)
		}
		defer tty.Close()
		fmt.Fprintf(tty, "passphrase for %s: ", keyPath)
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("reading passphrase from the terminal: %w", err)
		}
		return pw, nil
	}
}

// refuseExisting refuses to overwrite path.
func refuseExisting(path string) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists; not overwriting it", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	return nil
}
