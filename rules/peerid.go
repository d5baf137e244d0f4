package rules

import (
	"fmt"
	"strings"

	cid "github.com/ipfs/go-cid"
	ma "github.com/multiformats/go-multiaddr"
	mh "github.com/multiformats/go-multihash"
)

// PeerID is a member's libp2p peer ID: the raw bytes of its multihash, the
// same representation as go-libp2p's peer.ID, so the daemon converts with
// peer.ID(m.Peer) and rules.PeerID(id). The rules package checks peer IDs
// itself so that programs that only author rules (the CLI) do not link libp2p.
type PeerID string

// libp2pKeyCodec is the multicodec of a CID that names a libp2p key.
const libp2pKeyCodec = 0x72

// DecodePeerID parses a peer ID in either text form libp2p accepts: a base58
// multihash (Qm..., 12D3...) or a CID of a libp2p key.
func DecodePeerID(s string) (PeerID, error) {
	if strings.HasPrefix(s, "Qm") || strings.HasPrefix(s, "1") {
		m, err := mh.FromB58String(s)
		if err != nil {
			return "", fmt.Errorf("parsing peer ID: %w", err)
		}
		return PeerID(m), nil
	}
	c, err := cid.Decode(s)
	if err != nil {
		return "", fmt.Errorf("parsing peer ID: %w", err)
	}
	if c.Type() != libp2pKeyCodec {
		return "", fmt.Errorf("parsing peer ID: a CID of codec %#x is not a libp2p key", c.Type())
	}
	return PeerID(c.Hash()), nil
}

// String is the base58 form libp2p prints.
func (p PeerID) String() string { return mh.Multihash(p).B58String() }

// splitP2P splits a trailing /p2p/PEER component off a; id is "" when a has
// none.
func splitP2P(a ma.Multiaddr) (transport ma.Multiaddr, id PeerID) {
	transport, last := ma.SplitLast(a)
	if last == nil || last.Protocol().Code != ma.P_P2P {
		return a, ""
	}
	return transport, PeerID(last.RawValue())
}

// Validate reports whether p is a non-empty, well-formed multihash.
func (p PeerID) Validate() error {
	if p == "" {
		return fmt.Errorf("empty peer ID")
	}
	if _, err := mh.Cast([]byte(p)); err != nil {
		return fmt.Errorf("peer ID is not a multihash: %w", err)
	}
	return nil
}
