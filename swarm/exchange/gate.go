package exchange

import (
	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/proto"
)

// ServeGate decides whether the chunk c may be served to p now; false
// answers the BlockRequest with CodeBusy, and the requester fetches the
// chunk from another holder (super-seeding, docs/REPLICATION.md
// "Super-seeding").
type ServeGate func(p peer.ID, c cid.Cid) bool

// SetServeGate installs g on the serving side: every BlockRequest is asked
// to it first. A nil g removes the gate.
func (x *Exchange) SetServeGate(g ServeGate) {
	if g == nil {
		x.gate.Store(nil)
		return
	}
	x.gate.Store(&g)
}

// SetOverHint installs the function told of every HaveRequest marked Over
// for a content held here in full (a repair survey's hint that it is over
// target); nil removes it.
func (x *Exchange) SetOverHint(f func(root cid.Cid)) {
	if f == nil {
		x.overHint.Store(nil)
		return
	}
	x.overHint.Store(&f)
}

// gated returns the Busy answer to m when the serve gate refuses it, else nil.
func (x *Exchange) gated(p peer.ID, m *proto.BlockRequest) proto.Msg {
	g := x.gate.Load()
	if g == nil || (*g)(p, m.CID) {
		return nil
	}
	return &proto.ErrorResponse{ID: m.ID, Code: proto.CodeBusy, Message: "super-seeding: fetch this chunk from another member"}
}
