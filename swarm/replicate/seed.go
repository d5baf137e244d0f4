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
// copies_min first (docs/REPLICATION.md "copies_min first"): the holder
// put waits for (the first holder) is fed by the uploader; the others
// (followers) get Busy for every chunk while a first holder of it is
// connected, and fetch from the first holder as it fills, a pipeline.
// put so returns after about one transfer's time whatever copies is. The
// gate takes any number of first holders; place names one at most.
//
// A chunk is never stranded on a member that cannot pass it on: its
// assignment ends when that member disconnects, when its placement fails
// (release), and when it was served more than seedPassOn ago and someone
// else still asks the uploader for it. A first holder's hold on the
// followers ends when it disconnects or its placement fails (release);
// the placer abandons one that makes no progress (PlaceStall).

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
	// first counts, per member, the contents listing the chunk of which
	// it is a first holder: fed by the uploader, the others wait for it.
	first map[peer.ID]int
}

func newSuperSeed(h host.Host) *superSeed {
	return &superSeed{host: h, passOn: seedPassOn, nowFunc: time.Now, chunks: map[string]*seedChunk{}}
}

// add starts super-seeding the chunks of m, with first as its first
// holders (none: every new holder is served alike).
func (s *superSeed) add(m *chunk.Manifest, first ...peer.ID) {
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
	s.addFirst(m, first)
}

// promote makes first first holders of the chunks of m, added before
// (the fetches start once they are chosen: the gate served nobody yet).
func (s *superSeed) promote(m *chunk.Manifest, first ...peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addFirst(m, first)
}

// addFirst counts first as first holders of the chunks of m being seeded;
// s.mu is held.
func (s *superSeed) addFirst(m *chunk.Manifest, first []peer.ID) {
	if len(first) == 0 {
		return
	}
	for _, k := range distinctKeys(m) {
		c := s.chunks[k]
		if c == nil {
			continue
		}
		if c.first == nil {
			c.first = map[peer.ID]int{}
		}
		for _, p := range first {
			c.first[p]++
		}
	}
}

// remove stops super-seeding the chunks of m, added with first as its
// first holders (less those released since).
func (s *superSeed) remove(m *chunk.Manifest, first ...peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range distinctKeys(m) {
		c := s.chunks[k]
		if c == nil {
			continue
		}
		for _, p := range first {
			c.dropFirst(p)
		}
		if c.roots--; c.roots <= 0 {
			delete(s.chunks, k)
		}
	}
}

// dropFirst ends one count of p as a first holder of c.
func (c *seedChunk) dropFirst(p peer.ID) {
	if c.first[p] > 1 {
		c.first[p]--
	} else {
		delete(c.first, p)
	}
}

// release ends p's assignments among the chunks of m (its placement
// failed: what was served to it may never reach the others), and its
// place as a first holder of m when first, and returns how many chunks
// it had.
func (s *superSeed) release(m *chunk.Manifest, p peer.ID, first bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, k := range distinctKeys(m) {
		c := s.chunks[k]
		if c == nil {
			continue
		}
		if c.servedTo == p {
			c.servedTo, c.servedAt = "", time.Time{}
			n++
		}
		if first {
			c.dropFirst(p)
		}
	}
	return n
}

// allow is the ServeGate: a chunk not being seeded is always served. A
// seeded one is refused to a member that is not one of its first holders
// while one of those is connected; otherwise it is served to its first
// requester, again to the same member, and to a new member when the one it
// went to is no longer connected, was released, or has had it for longer
// than passOn.
func (s *superSeed) allow(p peer.ID, id cid.Cid) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chunks[id.KeyString()]
	switch {
	case c == nil, c.servedTo == p:
		return true
	case c.first[p] == 0 && s.firstConnected(c):
		return false // a follower: it gets the chunk from a first holder
	case c.servedTo == "" || !s.connected(c.servedTo):
		c.servedTo, c.servedAt = p, s.nowFunc()
		return true
	case s.nowFunc().Sub(c.servedAt) >= s.passOn:
		return true // not passed on in time: anyone may have it now
	}
	return false
}

// firstConnected reports whether one of c's first holders is connected.
func (s *superSeed) firstConnected(c *seedChunk) bool {
	for q := range c.first {
		if s.connected(q) {
			return true
		}
	}
	return false
}

func (s *superSeed) connected(p peer.ID) bool {
	return s.host.Network().Connectedness(p) == network.Connected
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

// BeginPut marks a put in flight here, from before its content is stored
// until its seeding has cleared any earlier removal of it; call the
// returned function when the put ends. While a put is in flight the
// repair round does not delete removed contents held here: the content
// being put may be one of them.
func (r *Replicator) BeginPut() (end func()) {
	r.puts.Add(1)
	var once sync.Once
	return func() { once.Do(func() { r.puts.Add(-1) }) }
}
