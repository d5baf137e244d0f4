package p2pstream

import (
	"sync"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// Slot keeps one stream handler registered under the protocol ID of the
// adopted swarm (each swarm has its own IDs), and moves it when the swarm
// changes. The exchange and the replicator each own one.
type Slot struct {
	host     host.Host
	forSwarm func(swarmID string) protocol.ID
	handler  network.StreamHandler

	mu  sync.Mutex
	cur protocol.ID // "" while no swarm is joined
}

// NewSlot returns a slot that registers handler on h under forSwarm(id)
// once Set is called.
func NewSlot(h host.Host, forSwarm func(swarmID string) protocol.ID, handler network.StreamHandler) *Slot {
	return &Slot{host: h, forSwarm: forSwarm, handler: handler}
}

// Set registers the handler for swarm id, removing the one of an earlier
// swarm; an empty id only removes it.
func (s *Slot) Set(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next protocol.ID
	if id != "" {
		next = s.forSwarm(id)
	}
	if next == s.cur {
		return
	}
	if s.cur != "" {
		s.host.RemoveStreamHandler(s.cur)
	}
	s.cur = next
	if next != "" {
		s.host.SetStreamHandler(next, s.handler)
	}
}

// Get returns the protocol ID in use, or "" when no swarm is joined.
func (s *Slot) Get() protocol.ID {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}
