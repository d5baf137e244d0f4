package replicate

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Super-seeding (docs/REPLICATION.md "Super-seeding"): while the uploader
// seeds a freshly put content to several new holders at once, it serves
// each chunk of it to one member only; a member asking for a chunk already
// served to another (connected) member gets Busy and fetches it from that
// member instead. The uploader so sends about one copy in total.
//
// A chunk is never stranded on a member that cannot pass it on: its
// assignment ends when that member disconnects, when its placement fails
// (release), and when it was served more than seedPassOn ago and someone
// else still asks the uploader for it.

// seedPassOn bounds how long a chunk served to one new holder is refused
// to the others: a holder that has not passed it on by then (slow, stuck,
// or its write failed) no longer keeps it from them.
const seedPassOn = 15 * time.Second

// superSeed is the gate's state: the chunks of the contents being
// super-seeded, each with the member it was served to.
type superSeed struct {
	host    host.Host
	passOn  time.Duration
	nowFunc func() time.Time

	mu     sync.Mutex
	chunks map[string]*seedChunk
}

type seedChunk struct {
	roots    int       // contents being seeded that list the chunk
	servedTo peer.ID   // "" until served once
	servedAt time.Time // when it was first served to servedTo
}

func newSuperSeed(h host.Host) *superSeed {
	return &superSeed{host: h, passOn: seedPassOn, nowFunc: time.Now, chunks: map[string]*seedChunk{}}
}

// add starts super-seeding the chunks of m.
func (s *superSeed) add(m *chunk.Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range distinctKeys(m) {
		c := s.chunks[k]
		if c == nil {
			c = &seedChunk{}
			s.chunks[k] = c
		}
		c.roots++
	}
}

// remove stops super-seeding the chunks of m.
func (s *superSeed) remove(m *chunk.Manifest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range distinctKeys(m) {
		if c := s.chunks[k]; c != nil {
			if c.roots--; c.roots <= 0 {
				delete(s.chunks, k)
			}
		}
	}
}

// release ends p's assignments among the chunks of m (its placement
// failed: what was served to it may never reach the others) and returns
// how many it had.
func (s *superSeed) release(m *chunk.Manifest, p peer.ID) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range distinctKeys(m) {
		if c := s.chunks[k]; c != nil && c.servedTo == p {
			c.servedTo, c.servedAt = "", time.Time{}
			n++
		}
	}
	return n
}

// allow is the ServeGate: a chunk not being seeded is always served; a
// seeded one to its first requester, again to the same member, and to a new
// member when the one it went to is no longer connected, was released, or
// has had it for longer than passOn.
func (s *superSeed) allow(p peer.ID, id cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chunks[id.KeyString()]
	switch {
	case c == nil, c.servedTo == p:
		return true
	case c.servedTo == "" || s.host.Network().Connectedness(c.servedTo) != network.Connected:
		c.servedTo, c.servedAt = p, s.nowFunc()
		return true
	case s.nowFunc().Sub(c.servedAt) >= s.passOn:
		return true // not passed on in time: anyone may have it now
	}
	return false
}

// distinctKeys returns the distinct chunk keys of m.
func distinctKeys(m *chunk.Manifest) []string {
	seen := make(map[string]bool, len(m.Chunks))
	out := make([]string, 0, len(m.Chunks))
	for _, r := range m.Chunks {
		k := r.CID.KeyString()
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	return out
}
