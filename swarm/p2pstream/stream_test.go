package p2pstream_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

const testProto protocol.ID = "/annex-swarm/test/p2pstream/1.0.0"

// Open resets the stream when its context ends, and release stops that.
func TestOpenResetsOnCancel(t *testing.T) {
	hs := swarmtest.Hosts(t, 2)
	a, b := hs[0].Host, hs[1].Host
	served := make(chan network.Stream, 2)
	b.SetStreamHandler(testProto, func(s network.Stream) { served <- s })
	swarmtest.Connect(t, a, b)

	ctx, cancel := context.WithCancel(context.Background())
	s, release, err := p2pstream.Open(ctx, a, b.ID(), testProto, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	remote := <-served
	cancel()
	_ = remote.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 8)
	var rerr error
	for rerr == nil {
		_, rerr = remote.Read(buf)
	}
	if errors.Is(rerr, io.EOF) || errors.Is(rerr, context.DeadlineExceeded) || strings.Contains(rerr.Error(), "deadline") {
		t.Fatalf("after cancel the server read %v, want a reset", rerr)
	}

	// Released before the cancel: the stream survives it.
	ctx2, cancel2 := context.WithCancel(context.Background())
	s2, release2, err := p2pstream.Open(ctx2, a, b.ID(), testProto, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !release2() {
		t.Fatal("release reported the reset as done")
	}
	cancel2()
	if _, err := s2.Write([]byte("y")); err != nil {
		t.Fatalf("a released stream was reset by its context: %v", err)
	}
	s2.Close()
}

// Without a swarm there is no protocol to open.
func TestOpenWithoutSwarm(t *testing.T) {
	hs := swarmtest.Hosts(t, 2)
	if _, _, err := p2pstream.Open(context.Background(), hs[0].Host, hs[1].Host.ID(), "", time.Second); !errors.Is(err, p2pstream.ErrNoSwarm) {
		t.Fatalf("got %v, want ErrNoSwarm", err)
	}
}

// An error reply never exceeds the protocol's bound, so Send accepts it.
func TestErrorReplyBounded(t *testing.T) {
	long := strings.Repeat("€", proto.MaxErrorMessage) // 3 bytes each: 256 cuts one
	r := p2pstream.ErrorReply(7, proto.CodeNoSpace, long)
	if len(r.Message) > proto.MaxErrorMessage || r.ID != 7 || r.Code != proto.CodeNoSpace {
		t.Fatalf("reply %d bytes, id %d, code %v", len(r.Message), r.ID, r.Code)
	}
	// It travels: a message cut inside a character would be invalid
	// UTF-8, which the receiver rejects as malformed.
	body, err := proto.EncodeMsg(r)
	if err != nil {
		t.Fatalf("encoding a bounded reply: %v", err)
	}
	back, err := proto.DecodeMsg(body)
	if err != nil {
		t.Fatalf("decoding a bounded reply: %v", err)
	}
	if got := back.(*proto.ErrorResponse).Message; !strings.HasPrefix(long, got) || len(got) < proto.MaxErrorMessage-1 {
		t.Fatalf("message %q is not the longest whole-character prefix", got)
	}
}

// The slot moves the handler with the swarm.
func TestSlotFollowsSwarm(t *testing.T) {
	hs := swarmtest.Hosts(t, 1)
	h := hs[0].Host
	forSwarm := func(id string) protocol.ID { return protocol.ID("/t/" + id + "/1.0.0") }
	sl := p2pstream.NewSlot(h, forSwarm, func(network.Stream) {})
	has := func(p protocol.ID) bool {
		for _, q := range h.Mux().Protocols() {
			if q == p {
				return true
			}
		}
		return false
	}
	sl.Set("a")
	if sl.Get() != forSwarm("a") || !has(forSwarm("a")) {
		t.Fatal("handler not registered for swarm a")
	}
	sl.Set("b")
	if has(forSwarm("a")) || !has(forSwarm("b")) {
		t.Fatal("handler did not move to swarm b")
	}
	sl.Set("")
	if sl.Get() != "" || has(forSwarm("b")) {
		t.Fatal("handler not removed")
	}
}
