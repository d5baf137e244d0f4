package rules

import (
	"crypto/rand"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
)

// TestPeerIDMatchesLibp2p checks that rules reads and prints peer IDs exactly
// as go-libp2p does, for every text form and key type the daemon may meet.
func TestPeerIDMatchesLibp2p(t *testing.T) {
	var ids []peer.ID
	for _, typ := range []int{crypto.Ed25519, crypto.Secp256k1, crypto.ECDSA} {
		_, pub, err := crypto.GenerateKeyPairWithReader(typ, 2048, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		for _, text := range []string{id.String(), peer.ToCid(id).String()} {
			got, err := DecodePeerID(text)
			if err != nil {
				t.Fatalf("DecodePeerID(%q): %v", text, err)
			}
			if peer.ID(got) != id || got.String() != id.String() {
				t.Fatalf("DecodePeerID(%q) = %s, libp2p says %s", text, got, id)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate(%s): %v", got, err)
			}
		}
		a := ma.StringCast("/ip4/127.0.0.1/tcp/4101/p2p/" + id.String())
		tr, p := splitP2P(a)
		wantTr, wantP := peer.SplitAddr(a)
		if p != PeerID(wantP) || !tr.Equal(wantTr) {
			t.Fatalf("splitP2P(%s) = %s %s, libp2p says %s %s", a, tr, p, wantTr, wantP)
		}
	}
	for _, bad := range []string{"", "Qm", "1", "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", "12D3KooWnotbase58!!"} {
		if got, err := DecodePeerID(bad); err == nil {
			t.Fatalf("DecodePeerID(%q) = %s, want an error", bad, got)
		}
	}
	if err := PeerID("").Validate(); err == nil {
		t.Fatal("an empty peer ID validated")
	}
}

// FuzzDecodePeerID checks that DecodePeerID agrees with libp2p's peer.Decode
// on any input, in what it accepts and in how it prints it.
func FuzzDecodePeerID(f *testing.F) {
	f.Add("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA")
	f.Add("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N")
	f.Add("bafzaajaiaejca4syrpdu6gdx4wsdnokxkprgzxf4wrstuc34gxw5k5jrag2so5gk")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := DecodePeerID(s)
		want, werr := peer.Decode(s)
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodePeerID(%q) error %v, libp2p %v", s, err, werr)
		}
		if err != nil {
			return
		}
		if peer.ID(got) != want {
			t.Fatalf("DecodePeerID(%q) = %x, libp2p %x", s, got, want)
		}
		if got.String() != want.String() {
			t.Fatalf("%q prints as %s, libp2p %s", s, got, want)
		}
	})
}
