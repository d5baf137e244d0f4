package membership

import (
	"context"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
)

// rulesStreamTimeout bounds one rules exchange (docs/PROTOCOL.md "Rules exchange").
const rulesStreamTimeout = 15 * time.Second

// syncWith opens a rules stream to p: both sides say their version, and the
// one behind asks the other for its signed definition.
func (m *Membership) syncWith(ctx context.Context, p peer.ID) error {
	m.mu.Lock()
	pid, d := m.proto, m.def
	m.mu.Unlock()
	if d == nil {
		return nil
	}
	s, err := m.host.NewStream(network.WithAllowLimitedConn(ctx, "rules sync"), p, pid)
	if err != nil {
		return fmt.Errorf("opening rules stream: %w", err)
	}
	if err := m.exchangeRules(ctx, s, true); err != nil {
		s.Reset()
		return err
	}
	// The exchange is complete; a QUIC peer that already closed its side
	// makes Close report a cancelled stream, which changes nothing.
	_ = s.Close()
	return nil
}

// handleRules answers a rules stream a member opened, as work of Run (the
// stream is reset when Run is not running, or stops).
func (m *Membership) handleRules(s network.Stream) {
	wait, cancel := context.WithTimeout(context.Background(), rulesStreamTimeout)
	defer cancel()
	if !m.tasks.Do(wait, func(ctx context.Context) { m.answerRules(ctx, s) }) {
		s.Reset()
	}
}

// answerRules runs the exchange on s; s is reset when ctx ends.
func (m *Membership) answerRules(ctx context.Context, s network.Stream) {
	defer context.AfterFunc(ctx, func() { s.Reset() })()
	if err := m.exchangeRules(ctx, s, false); err != nil {
		m.log.Debug("rules exchange failed", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	s.Close()
}

// exchangeRules runs the exchange on s: Hello both ways (the opener first),
// then whichever side has the lower version sends GetRules and receives Rules.
func (m *Membership) exchangeRules(ctx context.Context, s network.Stream, opener bool) error {
	_ = s.SetDeadline(time.Now().Add(rulesStreamTimeout))
	d := m.Current()
	if d == nil {
		return fmt.Errorf("no swarm joined")
	}
	c := proto.NewCodec(s)
	mine := &proto.Hello{SwarmID: d.ID.String(), Version: uint64(d.Version)}
	var theirs *proto.Hello
	var err error
	if opener {
		if err = p2pstream.Send(c, mine); err != nil {
			return err
		}
		theirs, err = p2pstream.RecvAs[*proto.Hello](c)
	} else {
		if theirs, err = p2pstream.RecvAs[*proto.Hello](c); err != nil {
			return err
		}
		err = p2pstream.Send(c, mine)
	}
	if err != nil {
		return err
	}
	if theirs.SwarmID != mine.SwarmID {
		return fmt.Errorf("peer %s is in swarm %s, not %s", s.Conn().RemotePeer(), theirs.SwarmID, mine.SwarmID)
	}
	switch {
	case theirs.Version > mine.Version:
		if err := p2pstream.Send(c, &proto.GetRules{}); err != nil {
			return err
		}
		r, err := p2pstream.RecvAs[*proto.Rules](c)
		if err != nil {
			return err
		}
		adopted, err := m.Offer(ctx, r.Signed)
		if err != nil {
			return fmt.Errorf("version %d from %s refused: %w", theirs.Version, s.Conn().RemotePeer(), err)
		}
		if adopted {
			m.log.Info("newer definition received", "from", s.Conn().RemotePeer(), "version", theirs.Version)
		}
	case theirs.Version < mine.Version:
		if _, err := p2pstream.RecvAs[*proto.GetRules](c); err != nil {
			return err
		}
		return p2pstream.Send(c, &proto.Rules{Signed: d.Signed()})
	}
	return nil
}
