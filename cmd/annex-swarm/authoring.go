package main

// The offline authoring commands: keys, the genesis, members, admins and the
// policy (docs/RULES.md#authoring). They need no daemon; the logic is in
// package rules, and this file only parses flags, reads and writes files.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	ma "github.com/multiformats/go-multiaddr"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/annex-swarm/annex-swarm/internal/atomicfile"
	"github.com/annex-swarm/annex-swarm/rules"
)

const passUsage = "file whose first line is the key's passphrase (else $" + rules.PassphraseEnv + ", else asked on the terminal)"

func keyCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "key",
		Short: "Generate an admin key or print its public part",
		Example: `  annex-swarm key generate --name alice -o alice.key
  annex-swarm key public alice.key > alice.pub`,
	}
	var name, out, passFile string
	gen := &cobra.Command{
		Use:   "generate --name NAME -o KEYFILE",
		Short: "Generate an armored OpenPGP secret key and print its fingerprint",
		Long: `key generate writes a new armored OpenPGP secret key (0600) to KEYFILE and prints
its fingerprint. A key exported with 'gpg --export-secret-keys --armor' works
the same. With --passphrase-file or $` + rules.PassphraseEnv + ` the key is protected.`,
		Example: "  annex-swarm key generate --name alice -o alice.key",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			var pass []byte
			var err error
			if _, set := os.LookupEnv(rules.PassphraseEnv); set || passFile != "" {
				if pass, err = rules.NewPassphrase(passFile, nil)(); err != nil {
					return fail(err)
				}
			}
			if err := refuseExisting(out); err != nil {
				return fail(err)
			}
			armored, err := rules.GenerateKey(name, pass)
			if err != nil {
				return fail(err)
			}
			s, err := rules.ReadSigner(bytes.NewReader(armored), func() ([]byte, error) { return pass, nil })
			if err != nil {
				return fail(err)
			}
			if err := atomicfile.WriteFile(out, armored, 0o600); err != nil {
				return fail(err)
			}
			// The fingerprint stays the last line of stdout, for scripts;
			// the words around it go to stderr.
			fmt.Fprintf(c.ErrOrStderr(), "wrote the secret key of %q to %s (0600); its fingerprint:\n", name, out)
			fmt.Fprintln(e.out, s.Fingerprint())
			fmt.Fprintf(c.ErrOrStderr(), "next: annex-swarm swarm create --name NAME --key %s -o swarm.rules\n", out)
			return nil
		},
	}
	gen.Flags().StringVar(&name, "name", "", "user ID of the new key, e.g. alice")
	gen.Flags().StringVarP(&out, "output", "o", "", "file to write the armored secret key to (must not exist)")
	gen.Flags().StringVar(&passFile, "passphrase-file", "", "protect the key with the first line of this file")
	_ = gen.MarkFlagRequired("name")
	_ = gen.MarkFlagRequired("output")
	pub := &cobra.Command{
		Use:     "public KEYFILE",
		Short:   "Print the armored public key of a key file (for admin add)",
		Example: "  annex-swarm key public alice.key > alice.pub",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := readAdmin(args[0])
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(e.out, "%s\n", a.Key)
			return nil
		},
	}
	c.AddCommand(gen, pub)
	return c
}

func swarmCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:     "swarm",
		Short:   "Create a new swarm definition",
		Example: "  annex-swarm swarm create --name family --key alice.key -o swarm.rules",
	}
	var name, keyFile, passFile, out string
	var copies, copiesMin int
	var repairAfter time.Duration
	create := &cobra.Command{
		Use:   "create --name NAME --key KEYFILE [--copies N] [--copies-min M] -o RULES",
		Short: "Write the clear-signed genesis definition (version 1) of a new swarm",
		Long: `swarm create writes version 1 of a new swarm definition, signed by KEYFILE,
whose key becomes the first admin. It has no members yet: add them with
'annex-swarm member add'. Defaults: copies ` + fmt.Sprint(rules.DefaultReplication.Copies) + `, copies_min ` + fmt.Sprint(rules.DefaultReplication.CopiesMin) + `, repair_after ` + rules.DefaultReplication.RepairAfter.String() + `.`,
		Example: "  annex-swarm swarm create --name family --key alice.key --copies 3 --copies-min 2 -o swarm.rules",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := refuseExisting(out); err != nil {
				return fail(err)
			}
			s, err := loadSigner(keyFile, passFile)
			if err != nil {
				return fail(err)
			}
			policy := rules.Replication{Copies: copies, CopiesMin: copiesMin, RepairAfter: repairAfter}
			d, err := rules.Create(name, s, policy, time.Now())
			if err != nil {
				return fail(err)
			}
			signed, err := s.Sign(d, nil)
			if err != nil {
				return fail(err)
			}
			if err := atomicfile.WriteFile(out, signed, 0o644); err != nil {
				return fail(err)
			}
			fmt.Fprintf(e.out, "created swarm %s (id %s), version 1, in %s\n", d.Swarm, d.ID, out)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&name, "name", "", "name of the swarm")
	f.StringVar(&keyFile, "key", "", "admin secret key that signs the definition")
	f.StringVar(&passFile, "passphrase-file", "", passUsage)
	f.IntVar(&copies, "copies", rules.DefaultReplication.Copies, "target number of copies the swarm keeps of each content")
	f.IntVar(&copiesMin, "copies-min", rules.DefaultReplication.CopiesMin, "copies that must be verified before a put succeeds")
	f.DurationVar(&repairAfter, "repair-after", rules.DefaultReplication.RepairAfter, "how long a missing copy waits before it is repaired")
	f.StringVarP(&out, "output", "o", "", "file to write the signed definition to (must not exist)")
	for _, n := range []string{"name", "key", "output"} {
		_ = create.MarkFlagRequired(n)
	}
	c.AddCommand(create)
	return c
}

func memberCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "member",
		Short: "Add or remove a member of a swarm definition (version + 1, signed again)",
		Example: `  annex-swarm member add swarm.rules --key alice.key --peer 12D3KooW... --addr /ip4/192.0.2.10/tcp/4101 --name nas
  annex-swarm member remove swarm.rules --key alice.key --peer 12D3KooW...`,
	}
	var keyFile, passFile, peerText string
	var addrs, groups []string
	var name, role, storage, upload, download string
	add := &cobra.Command{
		Use:   "add RULES --key KEYFILE --peer PEERID [--addr MULTIADDR]... [flags]",
		Short: "Add a host to the definition in RULES, rewriting it as the next version",
		Long: `member add enters a host (its peer ID from 'annex-swarm id' on that host) with
its addresses, role, groups and limits, and rewrites RULES in place as version
+ 1, signed by an admin key. Hand it to the daemons with 'rules push' and
'join'.`,
		Example: "  annex-swarm member add swarm.rules --key alice.key --peer 12D3KooW... --addr /ip4/192.0.2.10/tcp/4101 --name nas --storage 2TiB",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			m, err := memberFromFlags(peerText, addrs, name, role, groups, storage, upload, download)
			if err != nil {
				return fail(err)
			}
			return edit(e.out, args[0], keyFile, passFile, func(d *rules.Definition) error {
				return d.AddMember(m)
			})
		},
	}
	f := add.Flags()
	f.StringVar(&keyFile, "key", "", "admin secret key that signs the new version")
	f.StringVar(&passFile, "passphrase-file", "", passUsage)
	f.StringVar(&peerText, "peer", "", "the member's libp2p peer ID ('annex-swarm id' on that host)")
	f.StringArrayVar(&addrs, "addr", nil, "a multiaddr the member listens on (repeatable)")
	f.StringVar(&name, "name", "", "member name (default: the end of the peer ID)")
	f.StringVar(&role, "role", string(rules.RoleStorage), "storage (holds copies) or client (holds nothing it does not need)")
	f.StringArrayVar(&groups, "group", nil, "a placement group of the member, e.g. a site (repeatable)")
	f.StringVar(&storage, "storage", "", "storage limit, like 50GiB (default unlimited)")
	f.StringVar(&upload, "upload", "", "upload limit, like 16MiB/s (default unlimited)")
	f.StringVar(&download, "download", "", "download limit, like 64MiB/s (default unlimited)")
	_ = add.MarkFlagRequired("key")
	_ = add.MarkFlagRequired("peer")

	var rmKey, rmPass, rmPeer string
	remove := &cobra.Command{
		Use:     "remove RULES --key KEYFILE --peer PEERID",
		Short:   "Remove a host from the definition in RULES, rewriting it as the next version",
		Example: "  annex-swarm member remove swarm.rules --key alice.key --peer 12D3KooW...",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			p, err := rules.DecodePeerID(rmPeer)
			if err != nil {
				return fail(fmt.Errorf("%w: %q: %v", rules.ErrPeerID, rmPeer, err))
			}
			return edit(e.out, args[0], rmKey, rmPass, func(d *rules.Definition) error {
				return d.RemoveMember(p)
			})
		},
	}
	remove.Flags().StringVar(&rmKey, "key", "", "admin secret key that signs the new version")
	remove.Flags().StringVar(&rmPass, "passphrase-file", "", passUsage)
	remove.Flags().StringVar(&rmPeer, "peer", "", "peer ID of the member to remove")
	_ = remove.MarkFlagRequired("key")
	_ = remove.MarkFlagRequired("peer")
	c.AddCommand(add, remove)
	return c
}

func adminCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "admin",
		Short: "Add or remove an admin key of a swarm definition (version + 1, signed again)",
		Example: `  annex-swarm admin add swarm.rules --key alice.key --pubkey bob.pub
  annex-swarm admin remove swarm.rules --key bob.key --fingerprint 0123ABCD...`,
	}
	var keyFile, passFile, pubFile string
	add := &cobra.Command{
		Use:   "add RULES --key KEYFILE --pubkey PUBFILE",
		Short: "Make another key an admin: it may sign later versions",
		Example: `  annex-swarm key public bob.key > bob.pub
  annex-swarm admin add swarm.rules --key alice.key --pubkey bob.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			a, err := readAdmin(pubFile)
			if err != nil {
				return fail(err)
			}
			return edit(e.out, args[0], keyFile, passFile, func(d *rules.Definition) error {
				return d.AddAdmin(a)
			})
		},
	}
	add.Flags().StringVar(&keyFile, "key", "", "admin secret key that signs the new version")
	add.Flags().StringVar(&passFile, "passphrase-file", "", passUsage)
	add.Flags().StringVar(&pubFile, "pubkey", "", "armored public key of the new admin ('annex-swarm key public')")
	_ = add.MarkFlagRequired("key")
	_ = add.MarkFlagRequired("pubkey")
	var rmKey, rmPass, fpr string
	remove := &cobra.Command{
		Use:     "remove RULES --key KEYFILE --fingerprint FPR",
		Short:   "Remove an admin key; the definition must keep at least one",
		Example: "  annex-swarm admin remove swarm.rules --key bob.key --fingerprint 0123ABCD...",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			return edit(e.out, args[0], rmKey, rmPass, func(d *rules.Definition) error {
				return d.RemoveAdmin(fpr)
			})
		},
	}
	remove.Flags().StringVar(&rmKey, "key", "", "admin secret key that signs the new version")
	remove.Flags().StringVar(&rmPass, "passphrase-file", "", passUsage)
	remove.Flags().StringVar(&fpr, "fingerprint", "", "fingerprint of the admin key to remove")
	_ = remove.MarkFlagRequired("key")
	_ = remove.MarkFlagRequired("fingerprint")
	c.AddCommand(add, remove)
	return c
}

func (e *env) rulesCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "rules",
		Short: "Change the replication policy, verify a definition, or push it to the daemon",
		Example: `  annex-swarm rules set swarm.rules --key alice.key copies=3 repair_after=30m
  annex-swarm rules verify swarm.rules
  annex-swarm rules push swarm.rules`,
	}
	verify := &cobra.Command{
		Use:     "verify RULES",
		Short:   "Check the signature and content of a definition and print a summary",
		Example: "  annex-swarm rules verify swarm.rules",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			d, err := readDefinition(args[0])
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(e.out, "%s\nsigned by %s\n", d.Summary(), d.SignerFingerprint())
			for _, a := range d.Admins {
				fmt.Fprintf(e.out, "admin %s %s\n", a.Fingerprint, a.Name)
			}
			for _, m := range d.Members {
				fmt.Fprintf(e.out, "member %s %s %s\n", m.Name, m.Peer, m.Role)
			}
			return nil
		},
	}
	var keyFile, passFile string
	set := &cobra.Command{
		Use:   "set RULES --key KEYFILE KEY=VALUE...",
		Short: "Change copies, copies_min or repair_after, rewriting RULES as the next version",
		Long: `rules set changes the replication policy: copies=N (the target), copies_min=M
(copies verified before a put succeeds), repair_after=DURATION (how long a
missing copy waits before repair, e.g. 30m or 2h). RULES is rewritten in place
as version + 1, signed by an admin key.`,
		Example: "  annex-swarm rules set swarm.rules --key alice.key copies=3 copies_min=2 repair_after=30m",
		Args:    cobra.MinimumNArgs(2),
		RunE: func(c *cobra.Command, args []string) error {
			return edit(e.out, args[0], keyFile, passFile, func(d *rules.Definition) error {
				for _, a := range args[1:] {
					if err := d.Set(a); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	set.Flags().StringVar(&keyFile, "key", "", "admin secret key that signs the new version")
	set.Flags().StringVar(&passFile, "passphrase-file", "", passUsage)
	_ = set.MarkFlagRequired("key")
	c.AddCommand(set, verify, e.rulesPushCmd())
	return c
}

// edit reads RULES, applies change to the next version, signs it with the
// key and rewrites RULES atomically.
func edit(stdout io.Writer, rulesPath, keyFile, passFile string, change func(*rules.Definition) error) error {
	cur, err := readDefinition(rulesPath)
	if err != nil {
		return fail(err)
	}
	s, err := loadSigner(keyFile, passFile)
	if err != nil {
		return fail(err)
	}
	next := cur.Next()
	if err := change(next); err != nil {
		return fail(err)
	}
	signed, err := s.Sign(next, cur)
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteFile(rulesPath, signed, 0o644); err != nil {
		return fail(err)
	}
	fmt.Fprintf(stdout, "wrote version %d of swarm %s to %s\n", next.Version, next.Swarm, rulesPath)
	return nil
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
