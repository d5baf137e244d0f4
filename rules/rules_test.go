package rules

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestCreateSignVerify(t *testing.T) {
	s, _ := newSigner(t, "alice")
	d, signed := genesis(t, s, "home")
	if d.Version != 1 || d.Swarm != "home" || len(d.Admins) != 1 || d.Admins[0].Fingerprint != s.Fingerprint() {
		t.Fatalf("genesis = %+v", d)
	}
	if d.Admins[0].Name != "alice" {
		t.Errorf("admin name = %q, want alice", d.Admins[0].Name)
	}
	if d.ID != DeriveID("home", d.Created, []string{s.Fingerprint()}) {
		t.Errorf("ID %s is not DeriveID of the genesis", d.ID)
	}
	if d.SignerFingerprint() != s.Fingerprint() || !bytes.Equal(d.Signed(), signed) {
		t.Errorf("signer %q / signed document not recorded", d.SignerFingerprint())
	}
	if _, err := VerifyGenesis(signed, d.ID); err != nil {
		t.Errorf("VerifyGenesis with its own ID: %v", err)
	}
	other, _ := genesis(t, s, "work")
	if _, err := VerifyGenesis(signed, other.ID); !errors.Is(err, ErrSwarmID) {
		t.Errorf("VerifyGenesis with another swarm's ID: %v, want ErrSwarmID", err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	s, _ := newSigner(t, "alice")
	d, _ := genesis(t, s, "home")
	n := d.Next()
	m := newMember(t, "nas", 4101)
	m.Groups = []string{"home", "big"}
	m.Limits = Limits{Storage: 50 << 30, Upload: 16 << 20, Download: 1500000}
	if err := n.AddMember(m); err != nil {
		t.Fatal(err)
	}
	if err := n.AddMember(newMember(t, "laptop", 4102)); err != nil {
		t.Fatal(err)
	}
	n.Members[1].Role = RoleClient
	body := n.Encode()
	p, err := Parse(body)
	if err != nil {
		t.Fatalf("Parse(Encode): %v\n%s", err, body)
	}
	if again := p.Encode(); !bytes.Equal(again, body) {
		t.Fatalf("Encode(Parse(Encode(d))) differs:\n%s\n---\n%s", body, again)
	}
	got, _ := p.Member(m.Peer)
	if got.Limits != m.Limits || strings.Join(got.Groups, ",") != "home,big" || got.Addrs[0].String() != "/ip4/127.0.0.1/tcp/4101" {
		t.Errorf("member after round trip = %+v", got)
	}
	for _, want := range []string{`storage = "50GiB"`, `upload = "16MiB/s"`, `download = "1500kB/s"`, `role = "client"`, `repair_after = "1h"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("encoding lacks %s:\n%s", want, body)
		}
	}
}

func TestChain(t *testing.T) {
	alice, _ := newSigner(t, "alice")
	bob, _ := newSigner(t, "bob")
	v1, _ := genesis(t, alice, "home")

	// v2: alice adds bob as an admin and a member.
	n := v1.Next()
	bobAdmin, err := bob.Admin()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddAdmin(bobAdmin); err != nil {
		t.Fatal(err)
	}
	member := newMember(t, "nas", 4101)
	if err := n.AddMember(member); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sign(n, v1); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("bob signing v2 before he is an admin: %v, want ErrNotAdmin", err)
	}
	s2, err := alice.Sign(n, v1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := v1.VerifyNext(s2)
	if err != nil {
		t.Fatal(err)
	}

	// v3: bob, added in v2, signs; he removes alice.
	n = v2.Next()
	if err := n.RemoveAdmin(alice.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	s3, err := bob.Sign(n, v2)
	if err != nil {
		t.Fatalf("admin added in v2 signing v3: %v", err)
	}
	v3, err := v2.VerifyNext(s3)
	if err != nil {
		t.Fatal(err)
	}

	// v4 signed by alice, removed in v3: refused, both by Sign and by a
	// verifier (a forged v4 is made by signing against v2's authority).
	n = v3.Next()
	if err := n.Set("copies=3"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sign(n, v3); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("removed admin signing v4: %v, want ErrNotAdmin", err)
	}
	forged, err := alice.Sign(n, v2) // v4 claims v2's authority
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v3.VerifyNext(forged); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("v4 signed by removed admin: %v, want ErrNotAdmin", err)
	}

	// Replay: v2 and v3 against v3.
	for _, old := range [][]byte{s2, s3} {
		if _, err := v3.VerifyNext(old); !errors.Is(err, ErrReplay) {
			t.Errorf("replay: %v, want ErrReplay", err)
		}
	}

	// A member offline since v1 catches up with the chain, or with v3 alone
	// only if v1's admins signed it (they did not: bob signed v3).
	if got, err := v1.VerifyChain([][]byte{s2, s3}); err != nil || got.Version != 3 {
		t.Fatalf("VerifyChain: %v, %v", got, err)
	}
	if _, err := v1.VerifyNext(s3); !errors.Is(err, ErrNotAdmin) {
		t.Errorf("v3 signed by bob against v1: %v, want ErrNotAdmin", err)
	}
	// A gap is fine when the signer is an admin of the current version.
	n = v2.Next()
	n.Version = 7
	s7, err := alice.Sign(n, v2)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := v1.VerifyNext(s7); err != nil || got.Version != 7 {
		t.Errorf("v7 signed by alice against v1: %v, %v", got, err)
	}
}

func TestEdits(t *testing.T) {
	s, _ := newSigner(t, "alice")
	v1, _ := genesis(t, s, "home")
	n := v1.Next()
	m := newMember(t, "nas", 4101)
	if err := n.AddMember(m); err != nil {
		t.Fatal(err)
	}
	twin := newMember(t, "nas", 4102)
	if err := n.AddMember(twin); !errors.Is(err, ErrDuplicateMember) {
		t.Errorf("same name: %v, want ErrDuplicateMember", err)
	}
	twin = m
	twin.Name = "other"
	if err := n.AddMember(twin); !errors.Is(err, ErrDuplicateMember) {
		t.Errorf("same peer: %v, want ErrDuplicateMember", err)
	}
	if err := n.RemoveMember(newPeer(t)); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing a stranger: %v, want ErrNotFound", err)
	}
	if err := n.RemoveAdmin(s.Fingerprint()); !errors.Is(err, ErrInvalid) {
		t.Errorf("removing the last admin: %v, want ErrInvalid", err)
	}
	for _, bad := range []string{"copies", "copies=0", "copies=x", "speed=3", "repair_after=-1h"} {
		if err := n.Clone().Set(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Set(%q): %v, want ErrInvalid", bad, err)
		}
	}
	for _, a := range []string{"copies=4", "copies_min=3", "repair_after=90m"} {
		if err := n.Set(a); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Set("copies_min=5"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sign(n, v1); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "copies_min") {
		t.Errorf("signing copies_min > copies: %v, want ErrInvalid about copies_min", err)
	}
	n.Replication.CopiesMin = 3
	signed, err := s.Sign(n, v1)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := v1.VerifyNext(signed)
	if err != nil {
		t.Fatal(err)
	}
	want := Replication{Copies: 4, CopiesMin: 3, RepairAfter: 90 * time.Minute}
	if v2.Replication != want || len(v2.Members) != 1 {
		t.Errorf("v2 = %+v", v2)
	}
	if err := v2.Next().RemoveMember(m.Peer); err != nil {
		t.Errorf("removing a member: %v", err)
	}
}

func TestPassphraseProtectedKey(t *testing.T) {
	armored, err := GenerateKey("carol", []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSigner(bytes.NewReader(armored), nil); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("no passphrase: %v, want ErrSecretKey", err)
	}
	t.Setenv(PassphraseEnv, "wrong")
	if _, err := ReadSigner(bytes.NewReader(armored), NewPassphrase("", nil)); !errors.Is(err, ErrSecretKey) {
		t.Fatalf("wrong passphrase: %v, want ErrSecretKey", err)
	}
	t.Setenv(PassphraseEnv, "s3cret")
	s, err := ReadSigner(bytes.NewReader(armored), NewPassphrase("", nil))
	if err != nil {
		t.Fatal(err)
	}
	genesis(t, s, "home")
}

func TestLimitsStricter(t *testing.T) {
	a := Limits{Storage: 10, Upload: 0, Download: 5}
	b := Limits{Storage: 20, Upload: 7, Download: 0}
	if got, want := a.Stricter(b), (Limits{Storage: 10, Upload: 7, Download: 5}); got != want {
		t.Errorf("Stricter = %+v, want %+v", got, want)
	}
	if got := b.Stricter(a); got != a.Stricter(b) {
		t.Errorf("Stricter is not symmetric: %+v", got)
	}
}
