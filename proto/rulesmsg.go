package proto

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/protocol"
)

// RulesProtocolFor returns the rules exchange protocol ID of one swarm,
// "/annex-swarm/<swarmID>/rules/1.0.0", with the same constraints on swarmID
// as ExchangeProtocolFor.
func RulesProtocolFor(swarmID string) protocol.ID {
	return protocol.ID("/annex-swarm/" + swarmID + "/rules/1.0.0")
}

// Hello opens a rules stream in both directions: each side says which swarm
// it is in and which version of the definition it has adopted.
type Hello struct {
	// SwarmID identifies the swarm, 1 to MaxSwarmIDSize bytes.
	SwarmID string `cbor:"1,keyasint"`
	// Version is the adopted definition's version, 0 if none is adopted.
	Version uint64 `cbor:"2,keyasint"`
}

// GetRules asks for the peer's adopted signed definition. It has no fields.
type GetRules struct{}

// Rules carries a clear-signed swarm definition. The receiver MUST verify
// it (signature chain, version) before adopting it.
type Rules struct {
	// Signed is the clear-signed document, 1 to MaxRulesSize bytes.
	Signed []byte `cbor:"1,keyasint"`
}

// Type implements Msg.
func (*Hello) Type() MsgType { return TypeHello }

// Type implements Msg.
func (*GetRules) Type() MsgType { return TypeGetRules }

// Type implements Msg.
func (*Rules) Type() MsgType { return TypeRules }

// Validate implements Msg.
func (m *Hello) Validate() error {
	if err := validLen("Hello swarm id", len(m.SwarmID), 1, MaxSwarmIDSize); err != nil {
		return err
	}
	for i := 0; i < len(m.SwarmID); i++ {
		if c := m.SwarmID[i]; c == '/' || c < 0x21 || c > 0x7e {
			return fmt.Errorf("Hello swarm id: byte %#x at %d: %w", c, i, ErrInvalid)
		}
	}
	return nil
}

// Validate implements Msg.
func (*GetRules) Validate() error { return nil }

// Validate implements Msg.
func (m *Rules) Validate() error {
	return validLen("Rules signed document", len(m.Signed), 1, MaxRulesSize)
}

func (*Hello) sealed()    {}
func (*GetRules) sealed() {}
func (*Rules) sealed()    {}
