package daemon

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
)

// Erasure-coded contents in the control API (docs/ERASURE.md): the put's
// choice of layout and where's answer for a coded content.

// storeContent stores a content put here: erasure-coded when the adopted
// rules set a scheme and size is at least its min_size, else replicated.
func (d *Daemon) storeContent(ctx context.Context, r io.Reader, size int64, key string) (cid.Cid, error) {
	if def := d.members.Current(); def != nil && def.Replication.Coded(size) {
		e := def.Replication.Erasure
		root, _, err := d.store.PutCoded(ctx, r, size, key, e.Data, e.Parity)
		if err != nil {
			return cid.Undef, fmt.Errorf("erasure %s: %w", e, err)
		}
		return root, nil
	}
	root, _, err := d.store.Put(ctx, r, size, key)
	return root, err
}

// codedWhere is where's answer for a coded content.
func (d *Daemon) codedWhere(h replicate.CodedHolders) client.WhereResult {
	survives := h.Survives()
	out := client.WhereResult{
		CID: h.Root.String(), Holders: []client.Holder{}, Copies: h.Happiness, Target: h.K + h.M,
		CopiesMin: h.Success, Unreachable: h.Unreachable,
		Layout: "erasure", Scheme: strconv.Itoa(h.K) + "+" + strconv.Itoa(h.M),
		Needed: h.K, Success: h.Success, Repair: h.Success, Shards: []client.ShardHolder{},
		Placed: h.Placed, Survives: &survives,
	}
	def := d.members.Current()
	for _, p := range replicate.Ranked(h.Root, h.Sets) {
		name := ""
		if def != nil {
			if m, ok := def.Member(rules.PeerID(p)); ok {
				name = m.Name
			}
		}
		out.Holders = append(out.Holders, client.Holder{PeerID: p.String(), Name: name})
		out.Shards = append(out.Shards, client.ShardHolder{Member: name, Peer: p.String(), Sets: h.Sets[p], State: "live"})
	}
	return out
}
