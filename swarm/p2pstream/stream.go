// Package p2pstream holds the stream mechanics shared by the swarm's
// protocols (membership, exchange, replicate): opening a stream with a
// bounded dial that is reset when its context ends, sending one message and
// flushing, receiving a message of an expected type, error replies bounded
// to the protocol's limit with their codes (docs/PROTOCOL.md
// "ErrorResponse"), and the per-swarm protocol slot.
package p2pstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/proto"
)

// ErrNoSwarm is returned when no swarm is joined: there is no protocol ID
// to open a stream on.
var ErrNoSwarm = errors.New("swarm: no swarm joined")

// Open opens a stream to p on pid, the dial bounded by dialTimeout (and
// ctx), and resets the stream when ctx ends. The caller must call release
// once it is done with the stream (before or after closing it); release
// stops the reset on cancel and reports whether it had not happened yet,
// like the stop function of context.AfterFunc. An empty pid is ErrNoSwarm.
func Open(ctx context.Context, h host.Host, p peer.ID, pid protocol.ID, dialTimeout time.Duration) (s network.Stream, release func() bool, err error) {
	if pid == "" {
		return nil, nil, ErrNoSwarm
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	s, err = h.NewStream(dctx, p, pid)
	if err != nil {
		return nil, nil, fmt.Errorf("opening %s stream to %s: %w", pid, p, err)
	}
	release = context.AfterFunc(ctx, func() { s.Reset() })
	return s, release, nil
}

// Send sends msg on c and flushes it.
func Send(c *proto.Codec, msg proto.Msg) error {
	if err := c.Send(msg); err != nil {
		return err
	}
	return c.Flush()
}

// RecvAs receives one message and requires it to be of type T.
func RecvAs[T proto.Msg](c *proto.Codec) (T, error) {
	var zero T
	msg, err := c.Recv()
	if err != nil {
		return zero, fmt.Errorf("receiving: %w", err)
	}
	t, ok := msg.(T)
	if !ok {
		return zero, fmt.Errorf("unexpected %s message", msg.Type())
	}
	return t, nil
}

// ErrorReply builds the ErrorResponse to request id, its message cut to
// at most proto.MaxErrorMessage bytes on a character boundary (a cut
// character would make the text invalid UTF-8, which receivers reject).
func ErrorReply(id uint64, code proto.ErrorCode, msg string) *proto.ErrorResponse {
	if len(msg) > proto.MaxErrorMessage {
		n := proto.MaxErrorMessage
		for n > 0 && !utf8.RuneStart(msg[n]) {
			n--
		}
		msg = msg[:n]
	}
	return &proto.ErrorResponse{ID: id, Code: code, Message: strings.ToValidUTF8(msg, "?")}
}
