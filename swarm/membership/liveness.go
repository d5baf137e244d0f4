package membership

import (
	"context"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/protocol/ping"
)

// Liveness (docs/REPLICATION.md "Liveness"): whether a member is alive
// comes from a signal of its own, the libp2p ping protocol on the
// connection the member already has, never from how long a large answer
// takes. A member busy answering a survey of a million contents still
// answers a ping within milliseconds, so it is slow, not gone.

// Defaults of liveness.
const (
	// DefaultPingInterval is how often each connected member is pinged.
	DefaultPingInterval = 5 * time.Second
	// pingsMissed is how many ping intervals may pass without an answer
	// before a connected member no longer counts as alive.
	pingsMissed = 6
	pingWait    = pingsMissed / 2
)

// liveness is the record of the members' pings.
type liveness struct {
	mu    sync.Mutex
	alive map[peer.ID]time.Time // last answered ping (or new connection)
}

// answered records that p answered (or connected) at t.
func (l *liveness) answered(p peer.ID, t time.Time) {
	l.mu.Lock()
	if t.After(l.alive[p]) {
		l.alive[p] = t
	}
	l.mu.Unlock()
}

// last is when p last answered a ping or connected (zero: never).
func (l *liveness) last(p peer.ID) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alive[p]
}

// Alive reports whether p is alive: connected, and it answered a ping (or
// connected) less than pingsMissed ping intervals ago. since is when it
// was last known alive (zero: never since this host started): the moment
// it went away when it is not alive.
func (m *Membership) Alive(p peer.ID) (alive bool, since time.Time) {
	last := m.live.last(p)
	if m.host.Network().Connectedness(p) != network.Connected {
		// A closed connection is the latest sign of life.
		return false, later(last, m.LastSeen(p))
	}
	return time.Since(last) < pingsMissed*m.pingEvery, last
}

// pingLoop pings every connected member of the adopted definition every
// ping interval, concurrently, each ping bounded by pingWait intervals
// (half the time a member stays alive without an answer), until ctx ends.
func (m *Membership) pingLoop(ctx context.Context) {
	t := time.NewTicker(m.pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.pingRound(ctx)
	}
}

// pingRound pings each connected member once.
func (m *Membership) pingRound(ctx context.Context) {
	d := m.Current()
	if d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, pingWait*m.pingEvery)
	defer cancel()
	var wg sync.WaitGroup
	for _, p := range peersOf(d) {
		if p == m.host.ID() || m.host.Network().Connectedness(p) != network.Connected {
			continue
		}
		wg.Go(func() {
			pctx, stop := context.WithCancel(ctx)
			defer stop()
			select {
			case res, ok := <-ping.Ping(pctx, m.host, p):
				if ok && res.Error == nil && pctx.Err() == nil {
					m.live.answered(p, time.Now())
				} else {
					m.log.Debug("member did not answer a ping", "peer", p, "err", res.Error)
				}
			case <-pctx.Done():
			}
		})
	}
	wg.Wait()
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
