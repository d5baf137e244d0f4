package rules

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestGnuPGInterop checks both directions with the real gpg binary: gpg's
// clear-signatures verify here, ours verify in gpg, and a gpg key that is not
// an admin is refused.
func TestGnuPGInterop(t *testing.T) {
	g := newGPG(t)
	fpr := g.genKey("Alice <alice@example.org>", "")
	admin, err := ReadSigner(bytes.NewReader(g.exportSecret(fpr, "")), nil)
	if err != nil {
		t.Fatalf("reading a gpg-exported secret key: %v", err)
	}
	if admin.Fingerprint() != fpr {
		t.Fatalf("fingerprint %s, gpg says %s", admin.Fingerprint(), fpr)
	}

	// annex-swarm signs with the gpg key; gpg verifies.
	v1, signed := genesis(t, admin, "home")
	if err := g.verify(signed); err != nil {
		t.Fatalf("gpg --verify of a document annex-swarm signed: %v", err)
	}
	if err := g.verify(bytes.Replace(signed, []byte("copies = 2"), []byte("copies = 9"), 1)); err == nil {
		t.Fatal("gpg --verify accepted a tampered document: the test cannot tell")
	}

	// gpg clear-signs the next version with the admin key; annex-swarm verifies.
	n := v1.Next()
	if err := n.AddMember(newMember(t, "nas", 4101)); err != nil {
		t.Fatal(err)
	}
	byGPG := g.clearsign(fpr, "", n.Encode())
	v2, err := v1.VerifyNext(byGPG)
	if err != nil {
		t.Fatalf("verifying a document gpg --clearsign made with an admin key: %v\n%s", err, byGPG)
	}
	if v2.Version != 2 || len(v2.Members) != 1 || v2.SignerFingerprint() != fpr {
		t.Errorf("v2 = %+v, signer %s", v2, v2.SignerFingerprint())
	}
	// And a genesis that gpg signed verifies on its own.
	if _, err := Verify(g.clearsign(fpr, "", v1.Encode())); err != nil {
		t.Errorf("verifying a genesis gpg signed: %v", err)
	}

	// A gpg key that is not an admin: refused.
	stranger := g.genKey("Mallory <mallory@example.org>", "")
	if _, err := v1.VerifyNext(g.clearsign(stranger, "", n.Encode())); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("signature by a non-admin gpg key: %v, want ErrNotAdmin", err)
	}

	// A key made by annex-swarm key generate verifies in gpg 2.2 (EdDSA).
	ours, _ := newSigner(t, "bob")
	ourAdmin, err := ours.Admin()
	if err != nil {
		t.Fatal(err)
	}
	g.run([]byte(ourAdmin.Key), false, "--import")
	_, s := genesis(t, ours, "work")
	if err := g.verify(s); err != nil {
		t.Fatalf("gpg --verify of a document signed by a generated key: %v", err)
	}
}

// TestGnuPGProtectedKey signs with a passphrase-protected key exported by gpg,
// the passphrase coming from ANNEX_SWARM_PASSPHRASE.
func TestGnuPGProtectedKey(t *testing.T) {
	g := newGPG(t)
	fpr := g.genKey("Carol <carol@example.org>", "correct horse")
	exported := g.exportSecret(fpr, "correct horse")
	if !bytes.Contains(exported, []byte("PRIVATE KEY BLOCK")) {
		t.Fatalf("gpg exported no secret key:\n%s", exported)
	}
	t.Setenv(PassphraseEnv, "battery staple")
	if _, err := ReadSigner(bytes.NewReader(exported), NewPassphrase("", nil)); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("wrong passphrase: %v, want ErrSecretKey", err)
	}
	t.Setenv(PassphraseEnv, "correct horse")
	s, err := ReadSigner(bytes.NewReader(exported), NewPassphrase("", nil))
	if err != nil {
		t.Fatalf("protected gpg key with %s: %v", PassphraseEnv, err)
	}
	_, signed := genesis(t, s, "home")
	if err := g.verify(signed); err != nil {
		t.Fatalf("gpg --verify: %v", err)
	}
	if !strings.Contains(string(signed), "BEGIN PGP SIGNATURE") {
		t.Fatal("no signature block")
	}
}
