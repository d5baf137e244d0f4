package membership

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
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
	// started is when the record began: a member first heard from was
	// silent since then.
	started time.Time
	// quiet is the silence after which hearing from a connected member
	// again is a return: the time it stays alive without answering
	// (pingsMissed intervals), so that a member late with its pings on a
	// loaded machine, never taken for gone, does not count as back.
	quiet time.Duration
	// dropped marks the members whose last connection closed since they
	// were last heard from: hearing from one again is a return, however
	// short the silence.
	dropped map[peer.ID]bool
	back    map[peer.ID]comeback // the last return of each member
}

// comeback is a member heard from again after a silence.
type comeback struct {
	at   time.Time     // when it was heard from again
	away time.Duration // how long it had been silent
}

func newLiveness(quiet time.Duration) liveness {
	return liveness{alive: map[peer.ID]time.Time{}, back: map[peer.ID]comeback{}, dropped: map[peer.ID]bool{},
		started: time.Now(), quiet: quiet}
}

// answered records that p answered (or connected) at t, and a return when
// it was not alive before: never heard from (silent since the record
// began), its connections all closed since, or silent for longer than
// quiet.
func (l *liveness) answered(p peer.ID, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev := l.alive[p]
	if !t.After(prev) {
		return
	}
	first := prev.IsZero()
	if first {
		prev = l.started
	}
	if away := t.Sub(prev); first || l.dropped[p] || away > l.quiet {
		l.back[p] = comeback{at: t, away: away}
	}
	delete(l.dropped, p)
	l.alive[p] = t
}

// disconnected records that the last connection to p closed.
func (l *liveness) disconnected(p peer.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropped[p] = true
}

// last is when p last answered a ping or connected (zero: never).
func (l *liveness) last(p peer.ID) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.alive[p]
}

// Returned reports when p was last heard from again (a new connection or
// an answered ping) after it was not alive — never heard from, every
// connection to it closed, or silent longer than a member stays alive
// without answering (pingsMissed ping intervals) — and how long that
// silence lasted (for a member first heard from, the time
// since this host started); a zero time when it never was. A member lost
// for a long time and back may be the first of a partition healing
// (docs/REPLICATION.md "Liveness").
func (m *Membership) Returned(p peer.ID) (at time.Time, away time.Duration) {
	m.live.mu.Lock()
	defer m.live.mu.Unlock()
	b := m.live.back[p]
	return b.at, b.away
}

// Reconnecting is how long after a member returns the other members of a
// healed partition may still be reconnecting: two sync intervals (a dial
// under way at the heal may need all of its bound; the next one connects).
func (m *Membership) Reconnecting() time.Duration { return 2 * m.interval }

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
			conn, err := m.pingOnce(ctx, p)
			if err == nil {
				m.live.answered(p, time.Now())
				return
			}
			m.log.Debug("member did not answer a ping", "peer", p, "err", err)
			m.dropDeadConn(p, conn)
		})
	}
	wg.Wait()
}

// pingOnce pings p once on a stream of the libp2p ping protocol and
// returns the connection the stream went over (nil when none opened).
func (m *Membership) pingOnce(ctx context.Context, p peer.ID) (network.Conn, error) {
	s, err := m.host.NewStream(ctx, p, ping.ID)
	if err != nil {
		return nil, err
	}
	defer s.Reset()
	if d, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(d)
	}
	var out, in [ping.PingSize]byte
	if _, err := rand.Read(out[:]); err != nil {
		return s.Conn(), err
	}
	if _, err := s.Write(out[:]); err != nil {
		return s.Conn(), err
	}
	if _, err := io.ReadFull(s, in[:]); err != nil {
		return s.Conn(), err
	}
	if in != out {
		return s.Conn(), errors.New("ping answered with other bytes")
	}
	return s.Conn(), nil
}

// dropDeadConn closes conn, the connection a ping to p failed on, when p
// has another connection: a member restarted under the same peer ID (a
// crash and a service restart) leaves the others an old connection that
// looks open but leads nowhere until the transport's idle timeout, and new
// streams may pick it (a placement's fetch from a laptop made no progress
// for 30 s after its restart in the chaos run). With a single connection,
// liveness alone decides (slow is not dead).
func (m *Membership) dropDeadConn(p peer.ID, conn network.Conn) {
	if conn == nil || len(m.host.Network().ConnsToPeer(p)) < 2 {
		return
	}
	m.log.Info("closing a connection a ping failed on; the member has another", "peer", p, "conn", conn.RemoteMultiaddr())
	_ = conn.Close()
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
