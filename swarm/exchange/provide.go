package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// Discovery on the swarm's private DHT (docs/EXCHANGE.md "Discovery"): one
// provider record per manifest held in full or in part, never one per chunk.

// Bounds of discovery.
const (
	// provideTimeout bounds one announcement.
	provideTimeout = time.Minute
	// firstReprovide is how long Run waits before its first round, so that
	// the DHT has had time to fill its routing table.
	firstReprovide = time.Minute
	// maxProviders is the most provider records one lookup collects.
	maxProviders = 32
)

// ErrNoRouting is returned by Provide when no swarm DHT runs.
var ErrNoRouting = errors.New("swarm: no DHT (no swarm joined)")

// Provide announces on the swarm's DHT that this host holds root (a
// manifest CID), in full or in part.
func (x *Exchange) Provide(ctx context.Context, root cid.Cid) error {
	r := x.routing()
	if r == nil {
		return fmt.Errorf("announcing %s: %w", root, ErrNoRouting)
	}
	ctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	if err := r.Provide(ctx, root, true); err != nil {
		return fmt.Errorf("announcing %s: %w", root, err)
	}
	return nil
}

// Announce announces root like Provide, in the background: it does not
// wait on the network. The announcement is work of Run (it ends when Run's
// context does, and Run waits for it); a failure is only logged, since
// Run's periodic announcement retries. Outside Run it does nothing.
func (x *Exchange) Announce(root cid.Cid) {
	if x.routing() == nil {
		return
	}
	wait, cancel := context.WithTimeout(context.Background(), handleWait)
	defer cancel()
	x.tasks.Go(wait, func(ctx context.Context) {
		if err := x.Provide(ctx, root); err != nil {
			x.log.Debug("announcing content failed; the periodic announcement retries", "cid", root, "err", err)
		}
	})
}

// Run serves the exchange streams of the members and announces every
// manifest held (Store.Manifests) again, a minute after start and then
// every ReprovideInterval, so that provider records never expire, until ctx
// ends. Streams arriving while Run does not run are reset; Run returns
// once the streams it served have ended.
func (x *Exchange) Run(ctx context.Context) {
	var tasks sync.WaitGroup
	tasks.Go(func() { x.tasks.Run(ctx) })
	defer tasks.Wait()
	t := time.NewTimer(min(firstReprovide, x.reprovide))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		x.reprovideAll(ctx)
		t.Reset(x.reprovide)
	}
}

// reprovideAll announces every manifest held, one after another.
func (x *Exchange) reprovideAll(ctx context.Context) {
	if x.routing() == nil {
		return
	}
	roots, err := x.store.Manifests(ctx)
	if err != nil {
		x.log.Warn("listing manifests to announce", "err", err)
		return
	}
	failed := 0
	for _, root := range roots {
		if ctx.Err() != nil {
			return
		}
		if err := x.Provide(ctx, root); err != nil {
			failed++
			x.log.Debug("announcing failed", "cid", root, "err", err)
		}
	}
	x.log.Info("announced content on the swarm DHT", "manifests", len(roots), "failed", failed)
}

// holders streams candidate holders of root, each once and never this host:
// first the connected members, then the DHT's providers as they arrive. The
// channel is closed when the lookup ends, FindTimeout passes or ctx ends.
func (x *Exchange) holders(ctx context.Context, root cid.Cid) <-chan peer.ID {
	ch := make(chan peer.ID)
	go func() {
		defer close(ch)
		seen := map[peer.ID]bool{x.host.ID(): true}
		emit := func(p peer.ID) bool {
			if seen[p] {
				return true
			}
			seen[p] = true
			select {
			case ch <- p:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, p := range x.members() {
			if x.host.Network().Connectedness(p) == network.Connected && !emit(p) {
				return
			}
		}
		r := x.routing()
		if r == nil {
			return
		}
		fctx, cancel := context.WithTimeout(ctx, x.fetchOpts.FindTimeout)
		defer cancel()
		for ai := range r.FindProvidersAsync(fctx, root, maxProviders) {
			if ai.ID == "" || seen[ai.ID] {
				continue
			}
			if len(ai.Addrs) > 0 {
				x.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			if !emit(ai.ID) {
				return
			}
		}
	}()
	return ch
}

// isManifest checks that root can name content.
func isManifest(root cid.Cid) error {
	if !chunk.IsManifestCID(root) {
		return fmt.Errorf("%s is not a manifest CID: %w", root, chunk.ErrBadCID)
	}
	return nil
}
