package exchange

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
// manifest held (Store.Manifests) again every ReprovideInterval, so that
// provider records never expire, until ctx ends. The first announcement
// comes a minute after start at the earliest (the DHT fills its routing
// table first), and not before ReprovideInterval has passed since the last
// one recorded by SetAnnounced: a restart does not announce again what was
// announced lately. Streams arriving while Run does not run are reset; Run
// returns once the streams it served have ended.
func (x *Exchange) Run(ctx context.Context) {
	var tasks sync.WaitGroup
	tasks.Go(func() { x.tasks.Run(ctx) })
	defer tasks.Wait()
	t := time.NewTimer(x.firstAnnounce(time.Now()))
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

// firstAnnounce is how long Run waits, from now, before its first
// announcement of everything held.
func (x *Exchange) firstAnnounce(now time.Time) time.Duration {
	wait := min(firstReprovide, x.reprovide)
	if x.lastAnn == nil {
		return wait
	}
	last, err := x.lastAnn()
	if err != nil {
		x.log.Warn("reading when content was last announced; announcing again", "err", err)
		return wait
	}
	if last.IsZero() || last.After(now) {
		return wait
	}
	return max(wait, last.Add(x.reprovide).Sub(now))
}

// reprovideParallel bounds the announcements in flight at once in
// reprovideAll: one DHT walk after another took ~26 s for 42,000
// manifests on a 3-member swarm (issue 17); each walk mostly waits on
// round trips, so a few dozen at once fill the time.
const reprovideParallel = 32

// reprovideAll announces every manifest held, reprovideParallel at a
// time, and records when it did if all went out.
func (x *Exchange) reprovideAll(ctx context.Context) {
	if x.routing() == nil {
		return
	}
	start := time.Now()
	roots, err := x.store.Manifests(ctx)
	if err != nil {
		x.log.Warn("listing manifests to announce", "err", err)
		return
	}
	var failed atomic.Int64
	work := make(chan cid.Cid)
	var wg sync.WaitGroup
	for range min(reprovideParallel, len(roots)) {
		wg.Go(func() {
			for root := range work {
				if err := x.Provide(ctx, root); err != nil {
					failed.Add(1)
					x.log.Debug("announcing failed", "cid", root, "err", err)
				}
			}
		})
	}
feed:
	for _, root := range roots {
		select {
		case work <- root:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	x.log.Info("announced content on the swarm DHT", "manifests", len(roots), "failed", failed.Load(), "took", time.Since(start))
	if failed.Load() == 0 && x.setAnn != nil {
		if err := x.setAnn(start); err != nil {
			x.log.Warn("recording when content was announced", "err", err)
		}
	}
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
