package rules

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// newSigner makes a fresh unprotected Ed25519 admin key.
func newSigner(t testing.TB, name string) (*Signer, []byte) {
	t.Helper()
	armored, err := GenerateKey(name, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ReadSigner(bytes.NewReader(armored), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, armored
}

// newPeer makes a fresh libp2p peer ID.
func newPeer(t testing.TB) PeerID {
	t.Helper()
	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return PeerID(p)
}

// newMember makes a storage member with one loopback address.
func newMember(t testing.TB, name string, port int) Member {
	t.Helper()
	a, err := ma.NewMultiaddr("/ip4/127.0.0.1/tcp/" + strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	return Member{Name: name, Peer: newPeer(t), Addrs: []ma.Multiaddr{a}, Role: RoleStorage}
}

// genesis makes and signs a genesis with admin s.
func genesis(t testing.TB, s *Signer, name string) (*Definition, []byte) {
	t.Helper()
	d, err := Create(name, s, DefaultReplication, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signed, err := s.Sign(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := Verify(signed)
	if err != nil {
		t.Fatal(err)
	}
	return v, signed
}

// gpgHome is a throwaway GnuPG home.
type gpgHome struct {
	t   *testing.T
	dir string
}

// newGPG makes a GnuPG home in a temp folder, or skips the test when gpg is
// not installed.
func newGPG(t *testing.T) *gpgHome {
	t.Helper()
	if _, err := exec.LookPath("gpg"); err != nil {
		t.Skip("gpg is not installed (apt-get install gnupg); skipping GnuPG interop test")
	}
	// A short path: gpg-agent's socket lives in the home.
	dir, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	g := &gpgHome{t: t, dir: dir}
	t.Cleanup(func() {
		if _, err := exec.LookPath("gpgconf"); err == nil {
			cmd := exec.Command("gpgconf", "--kill", "all")
			cmd.Env = append(os.Environ(), "GNUPGHOME="+dir)
			_ = cmd.Run() // best effort: the agent may not be running
		}
		os.RemoveAll(dir)
	})
	return g
}

// run runs gpg in batch mode with stdin and returns stdout; it fails the
// test on a non-zero exit unless allowFail.
func (g *gpgHome) run(stdin []byte, allowFail bool, args ...string) ([]byte, error) {
	g.t.Helper()
	full := append([]string{"--batch", "--no-tty", "--pinentry-mode", "loopback"}, args...)
	cmd := exec.Command("gpg", full...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.dir)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && !allowFail {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	if err != nil {
		return out.Bytes(), &gpgError{err: err, stderr: errb.String()}
	}
	return out.Bytes(), nil
}

type gpgError struct {
	err    error
	stderr string
}

func (e *gpgError) Error() string { return e.err.Error() + ": " + e.stderr }

// genKey makes an Ed25519 signing key protected by passphrase (may be
// empty) and returns its fingerprint.
func (g *gpgHome) genKey(uid, passphrase string) string {
	g.t.Helper()
	g.run(nil, false, "--passphrase", passphrase, "--quick-gen-key", uid, "ed25519", "sign", "never")
	out, _ := g.run(nil, false, "--with-colons", "--fingerprint", uid)
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" && len(f) > 9 {
			return f[9]
		}
	}
	g.t.Fatalf("no fingerprint for %s in:\n%s", uid, out)
	return ""
}

// exportSecret exports the armored secret key fpr.
func (g *gpgHome) exportSecret(fpr, passphrase string) []byte {
	g.t.Helper()
	out, _ := g.run(nil, false, "--passphrase", passphrase, "--armor", "--export-secret-keys", fpr)
	return out
}

// clearsign clear-signs body with key fpr.
func (g *gpgHome) clearsign(fpr, passphrase string, body []byte) []byte {
	g.t.Helper()
	out, _ := g.run(body, false, "--passphrase", passphrase, "--local-user", fpr, "--clearsign")
	return out
}

// verify runs gpg --verify on a clear-signed document.
func (g *gpgHome) verify(signed []byte) error {
	g.t.Helper()
	f := filepath.Join(g.t.TempDir(), "doc.asc")
	if err := os.WriteFile(f, signed, 0o600); err != nil {
		g.t.Fatal(err)
	}
	_, err := g.run(nil, true, "--verify", f)
	return err
}
