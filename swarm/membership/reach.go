package membership

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	manet "github.com/multiformats/go-multiaddr/net"
	"github.com/multiformats/go-multistream"
)

// ReachProtocol is the member-only reachability check (docs/NAT.md
// "Reachability"): a member asks another to dial it back on its TCP listen
// ports at the IP address the connection comes from. It stands in for
// AutoNAT, whose dial-back comes from a throwaway peer ID that a closed
// swarm's gater refuses, and whose service would answer strangers.
const ReachProtocol protocol.ID = "/annex-swarm/reach/1.0.0"

// MaxReachPorts bounds the ports one check names.
const MaxReachPorts = 8

const (
	reachStreamTimeout = 15 * time.Second
	reachDialTimeout   = 4 * time.Second
	// reachFirstProbe and reachMaxBackoff pace the checks until one gives
	// an answer; reachReprobe paces them afterwards.
	reachFirstProbe = 2 * time.Second
	reachMaxBackoff = time.Minute
	reachReprobe    = 5 * time.Minute
	// reachAsk is how many members one round asks.
	reachAsk = 3
)

// ErrBadReachMessage is returned for a malformed reachability message.
var ErrBadReachMessage = errors.New("membership: malformed reachability message")

// EncodePorts is the wire form of both the request and the answer: one
// byte count, then each port as two bytes big-endian.
func EncodePorts(ports []uint16) []byte {
	if len(ports) > MaxReachPorts {
		ports = ports[:MaxReachPorts]
	}
	b := make([]byte, 1, 1+2*len(ports))
	b[0] = byte(len(ports))
	for _, p := range ports {
		b = append(b, byte(p>>8), byte(p))
	}
	return b
}

// ReadPorts reads one message written by EncodePorts.
func ReadPorts(r io.Reader) ([]uint16, error) {
	var n [1]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	if n[0] > MaxReachPorts {
		return nil, fmt.Errorf("%w: %d ports, at most %d", ErrBadReachMessage, n[0], MaxReachPorts)
	}
	b := make([]byte, 2*int(n[0]))
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReachMessage, err)
	}
	out := make([]uint16, n[0])
	for i := range out {
		out[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
		if out[i] == 0 {
			return nil, fmt.Errorf("%w: port 0", ErrBadReachMessage)
		}
	}
	return out, nil
}

// handleReach answers a member's check: it dials the member's IP (as this
// connection sees it) on each port it names and answers the ports where a
// libp2p listener answered. Only direct connections are served, so the
// address dialed is the one the member is seen at, never one it chose.
func (n *NAT) handleReach(s network.Stream) {
	_ = s.SetDeadline(time.Now().Add(reachStreamTimeout))
	remote := s.Conn().RemoteMultiaddr()
	if isCircuit(remote) || s.Conn().Stat().Limited {
		s.Reset()
		return
	}
	ip, err := manet.ToIP(remote)
	if err != nil {
		s.Reset()
		return
	}
	ports, err := ReadPorts(s)
	if err != nil {
		n.log.Debug("reachability check refused", "peer", s.Conn().RemotePeer(), "err", err)
		s.Reset()
		return
	}
	ok := make([]bool, len(ports))
	var wg sync.WaitGroup
	for i, p := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok[i] = dialBack(net.JoinHostPort(ip.String(), strconv.Itoa(int(p))))
		}()
	}
	wg.Wait()
	var reached []uint16
	for i, p := range ports {
		if ok[i] {
			reached = append(reached, p)
		}
	}
	if _, err := s.Write(EncodePorts(reached)); err != nil {
		s.Reset()
		return
	}
	_ = s.Close()
}

// dialBack reports whether a libp2p listener answers at addr: a TCP
// connection, then multistream-select of a security protocol. Nothing more
// is sent; the listener drops the half-done handshake.
func dialBack(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, reachDialTimeout)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(reachDialTimeout))
	_, err = multistream.SelectOneOf([]protocol.ID{"/noise", "/tls/1.0.0"}, c)
	return err == nil
}

// listenPorts are this host's TCP listen ports on addresses other than
// loopback.
func (n *NAT) listenPorts() []uint16 {
	var out []uint16
	seen := map[uint16]bool{}
	for _, a := range n.h.Network().ListenAddresses() {
		if manet.IsIPLoopback(a) {
			continue
		}
		v, err := a.ValueForProtocol(ma.P_TCP)
		if err != nil {
			continue
		}
		p, err := strconv.ParseUint(v, 10, 16)
		if err != nil || p == 0 || seen[uint16(p)] {
			continue
		}
		seen[uint16(p)] = true
		out = append(out, uint16(p))
	}
	if len(out) > MaxReachPorts {
		out = out[:MaxReachPorts]
	}
	return out
}

// askReach asks member p to dial this host back; it returns whether any
// port was reached.
func (n *NAT) askReach(ctx context.Context, p peer.ID, ports []uint16) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, reachStreamTimeout)
	defer cancel()
	s, err := n.h.NewStream(ctx, p, ReachProtocol)
	if err != nil {
		return false, fmt.Errorf("opening reachability stream to %s: %w", p, err)
	}
	_ = s.SetDeadline(time.Now().Add(reachStreamTimeout))
	if _, err := s.Write(EncodePorts(ports)); err != nil {
		s.Reset()
		return false, fmt.Errorf("asking %s: %w", p, err)
	}
	_ = s.CloseWrite()
	got, err := ReadPorts(s)
	if err != nil {
		s.Reset()
		return false, fmt.Errorf("reading %s's answer: %w", p, err)
	}
	_ = s.Close()
	return len(got) > 0, nil
}

// Run checks this host's reachability with directly connected members
// until ctx ends: every reachFirstProbe, backing off, until an answer, then
// every reachReprobe. Reachable by any member asked is public; reached by
// none of those that answered is private.
func (n *NAT) Run(ctx context.Context) {
	wait := reachFirstProbe
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if n.probe(ctx) {
			wait = reachReprobe
		} else if wait = 2 * wait; wait > reachMaxBackoff {
			wait = reachMaxBackoff
		}
	}
}

// probe runs one round; it reports whether it reached a verdict.
func (n *NAT) probe(ctx context.Context) bool {
	ports := n.listenPorts()
	if len(ports) == 0 {
		n.setReachability(network.ReachabilityPrivate)
		return true
	}
	var cands []peer.ID
	for _, p := range n.h.Network().Peers() {
		if n.gater.Allowed(p) && n.hasDirectConn(p) {
			cands = append(cands, p)
		}
	}
	rand.Shuffle(len(cands), func(i, j int) { cands[i], cands[j] = cands[j], cands[i] })
	if len(cands) > reachAsk {
		cands = cands[:reachAsk]
	}
	answered, reached := 0, 0
	for _, p := range cands {
		ok, err := n.askReach(ctx, p, ports)
		if err != nil {
			n.log.Debug("reachability check failed", "peer", p, "err", err)
			continue
		}
		answered++
		if ok {
			reached++
		}
	}
	switch {
	case reached > 0:
		n.setReachability(network.ReachabilityPublic)
	case answered > 0:
		n.setReachability(network.ReachabilityPrivate)
	default:
		return false
	}
	return true
}

func (n *NAT) hasDirectConn(p peer.ID) bool {
	for _, c := range n.h.Network().ConnsToPeer(p) {
		if !isCircuit(c.RemoteMultiaddr()) && !c.Stat().Limited {
			return true
		}
	}
	return false
}
