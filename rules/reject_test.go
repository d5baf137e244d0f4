package rules

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// signRaw clear-signs any body with s, bypassing the checks of Sign.
func signRaw(t *testing.T, s *Signer, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	cfg := keyConfig
	w, err := clearsign.Encode(&buf, s.key, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte(body)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestRejections runs every rejection of docs/RULES.md#rejections against a
// current definition and checks the reason and that the definition is kept.
func TestRejections(t *testing.T) {
	alice, _ := newSigner(t, "alice")
	mallory, _ := newSigner(t, "mallory")
	v1, s1 := genesis(t, alice, "home")
	next := v1.Next()
	nas := newMember(t, "nas", 4101)
	if err := next.AddMember(nas); err != nil {
		t.Fatal(err)
	}
	body := string(next.Encode())
	s2 := signRaw(t, alice, body)
	if _, err := v1.VerifyNext(s2); err != nil {
		t.Fatalf("the base v2 does not verify: %v", err)
	}
	otherSwarm, _ := genesis(t, alice, "elsewhere")
	otherNext := otherSwarm.Next()
	otherNext.Members = next.Members
	s2other := signRaw(t, alice, string(otherNext.Encode()))
	s2b := signRaw(t, alice, strings.Replace(body, "copies = 2", "copies = 3", 1))
	sigOf := func(doc []byte) []byte { return doc[bytes.Index(doc, []byte("-----BEGIN PGP SIGNATURE-----")):] }
	bodyOf := func(doc []byte) []byte {
		return bytes.Clone(doc)[:bytes.Index(doc, []byte("-----BEGIN PGP SIGNATURE-----"))]
	}
	peerLine := "peer = \"" + nas.Peer.String() + "\""
	twin := "\n[[member]]\nname = \"twin\"\n" + peerLine + "\naddrs = []\nrole = \"client\"\n"
	twinName := "\n[[member]]\nname = \"nas\"\npeer = \"" + newPeer(t).String() + "\"\naddrs = []\nrole = \"client\"\n"
	v2, err := v1.VerifyNext(s2)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		cur  *Definition // nil: Verify on its own
		doc  []byte
		want error
		msg  string
	}{
		{"bad signature", v1, append(bodyOf(s2), sigOf(s2b)...), ErrBadSignature, "bad signature"},
		{"missing signature", v1, []byte(body), ErrNotSigned, "not a clear-signed document"},
		{"signed by a non-admin", v1, signRaw(t, mallory, body), ErrNotAdmin, "not an admin of version 1"},
		{"genesis signed by a non-admin", nil, signRaw(t, mallory, string(v1.Encode())), ErrNotAdmin, "not an admin of version 1"},
		{"tampered genesis", nil, bytes.Replace(s1, []byte("alice"), []byte("alicf"), 1), ErrBadSignature, "bad signature"},
		{"tampered body", v1, bytes.Replace(s2, []byte("copies = 2"), []byte("copies = 3"), 1), ErrBadSignature, "bad signature"},
		{"tampered address", v1, bytes.Replace(s2, []byte("127.0.0.1"), []byte("127.0.0.2"), 1), ErrBadSignature, "bad signature"},
		{"truncated armor", v1, s2[:len(s2)-60], ErrArmor, "incomplete"},
		{"signature cut off", v1, bodyOf(s2), ErrArmor, "incomplete"},
		{"data after the signature", v1, append(bytes.Clone(s2), "copies = 9\n"...), ErrArmor, "data after"},
		{"data before the message", v1, append([]byte("version = 9\n"), s2...), ErrArmor, "data before"},
		{"different swarm ID", v1, s2other, ErrSwarmID, "swarm ID mismatch"},
		{"forged genesis ID", nil, signRaw(t, alice, strings.Replace(string(v1.Encode()), v1.ID.String(), otherSwarm.ID.String(), 1)), ErrSwarmID, "not derived"},
		{"equal version (replay)", v2, s2, ErrReplay, "version 2, current is 2"},
		{"older version (replay)", v2, s1, ErrReplay, "version 1, current is 2"},
		{"over the size bound", v1, append(bytes.Clone(s2), bytes.Repeat([]byte("\n"), MaxDocumentSize)...), ErrTooLarge, "bound is 1048576"},
		{"unknown field", v1, signRaw(t, alice, strings.Replace(body, "version = 2\n", "version = 2\ncolour = \"blue\"\n", 1)), ErrUnknownField, `line 6: "colour"`},
		{"unknown member field", v1, signRaw(t, alice, body+"nickname = \"x\"\n"), ErrUnknownField, `"member.nickname"`},
		{"malformed peer ID", v1, signRaw(t, alice, strings.Replace(body, nas.Peer.String(), "12D3KooWnotapeer", 1)), ErrPeerID, "malformed peer ID"},
		{"malformed multiaddr", v1, signRaw(t, alice, strings.Replace(body, "/ip4/127.0.0.1/tcp/4101", "/ip4/300.0.0.1/tcp/4101", 1)), ErrMultiaddr, "malformed multiaddr"},
		{"multiaddr of another peer", v1, signRaw(t, alice, strings.Replace(body, "/tcp/4101", "/tcp/4101/p2p/"+newPeer(t).String(), 1)), ErrMultiaddr, "names peer"},
		{"member listed twice (peer)", v1, signRaw(t, alice, body+twin), ErrDuplicateMember, "both peer"},
		{"member listed twice (name)", v1, signRaw(t, alice, body+twinName), ErrDuplicateMember, `both named "nas"`},
		{"copies_min above copies", v1, signRaw(t, alice, strings.Replace(body, "copies_min = 1", "copies_min = 3", 1)), ErrInvalid, "copies_min = 3"},
		{"erasure set", v1, signRaw(t, alice, strings.Replace(body, "parity = 0", "parity = 2", 1)), ErrInvalid, "reserved"},
		{"TOML syntax", v1, signRaw(t, alice, strings.Replace(body, "version = 2", "version = = 2", 1)), ErrSyntax, "line 5"},
		{"wrong type", v1, signRaw(t, alice, strings.Replace(body, "version = 2", `version = "2"`, 1)), ErrSyntax, "version"},
		{"swarm renamed", v1, signRaw(t, alice, strings.Replace(body, `swarm = "home"`, `swarm = "castle"`, 1)), ErrInvalid, "never change"},
		{"unknown format", v1, signRaw(t, alice, strings.Replace(body, "format = 1", "format = 2", 1)), ErrInvalid, "format = 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before []byte
			if c.cur != nil {
				before = c.cur.Encode()
			}
			var got *Definition
			var err error
			if c.cur == nil {
				got, err = Verify(c.doc)
			} else {
				got, err = c.cur.VerifyNext(c.doc)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if got != nil {
				t.Errorf("a definition came back with the error")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("message %q lacks %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("message is not one line: %q", err)
			}
			if c.cur != nil && !bytes.Equal(before, c.cur.Encode()) {
				t.Errorf("the current definition changed")
			}
		})
	}
}
