package replicate

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/rules"
)

// returnsMembers is a Membership whose members returned as given.
type returnsMembers struct {
	fixedMembers
	back map[peer.ID][2]time.Time // when the silence began, when it ended
}

func (m returnsMembers) Returned(p peer.ID) (time.Time, time.Duration) {
	b, ok := m.back[p]
	if !ok {
		return time.Time{}, 0
	}
	return b[1], b[1].Sub(b[0])
}

func (returnsMembers) Reconnecting() time.Duration { return 20 * time.Second }

// A storage member back after a silence of repair_after or more, lately,
// makes the round rejoining; a silence counts from no earlier than the
// repair loop's start (a member first heard from 5 s after the membership
// began but 1 s after the loop started was never counted as gone), and a
// return older than the reconnecting time is over.
func TestRejoiningCountsFromTheLoopsStart(t *testing.T) {
	const grace = 4 * time.Second
	def := &rules.Definition{}
	var ids []peer.ID
	for i := range 3 {
		id := peer.ID(string(rune('a' + i)))
		ids = append(ids, id)
		def.Members = append(def.Members, rules.Member{Name: string(id), Peer: rules.PeerID(id), Role: rules.RoleStorage})
	}
	self, other := ids[0], ids[1]
	now := time.Now()
	start := now.Add(-10 * time.Second) // the repair loop's start
	pl := policy{def: def, self: self, storage: true, copies: 2, min: 1, grace: grace}
	for _, c := range []struct {
		name       string
		from, back time.Time
		want       bool
	}{
		{"silent 5 s, back 1 s ago", now.Add(-6 * time.Second), now.Add(-time.Second), true},
		{"silent 3 s: never gone", now.Add(-4 * time.Second), now.Add(-time.Second), false},
		{"silent since before the loop started, back 1 s after its start", start.Add(-5 * time.Second), start.Add(time.Second), false},
		{"silent since before the loop started, back 5 s after its start", start.Add(-5 * time.Second), start.Add(5 * time.Second), true},
		{"back 30 s ago: reconnected since", now.Add(-90 * time.Second), now.Add(-30 * time.Second), false},
	} {
		r := &Replicator{started: start, members: returnsMembers{
			fixedMembers: fixedMembers{def: def},
			back:         map[peer.ID][2]time.Time{other: {c.from, c.back}},
		}}
		if got := r.rejoining(pl, now); got != c.want {
			t.Errorf("%s: rejoining %v, want %v", c.name, got, c.want)
		}
	}
}
