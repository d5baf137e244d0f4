package exchange

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
	"golang.org/x/time/rate"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/p2pstream"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// openCodec opens an exchange stream from a to b.
func openCodec(t *testing.T, a, b *node) (network.Stream, *proto.Codec) {
	t.Helper()
	a.connect(t, b)
	s, err := a.h.NewStream(context.Background(), b.h.ID(), proto.ExchangeProtocolFor(testSwarmID))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Reset() })
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	return s, proto.NewCodec(s)
}

func roundTrip(t *testing.T, c *proto.Codec, m proto.Msg) proto.Msg {
	t.Helper()
	if err := p2pstream.Send(c, m); err != nil {
		t.Fatal(err)
	}
	r, err := c.Recv()
	if err != nil {
		t.Fatalf("after %s: %v", m.Type(), err)
	}
	return r
}

func wantCode(t *testing.T, m proto.Msg, code proto.ErrorCode) {
	t.Helper()
	e, ok := m.(*proto.ErrorResponse)
	if !ok || e.Code != code {
		t.Fatalf("got %#v, want ErrorResponse %s", m, code)
	}
}

func TestServeRequests(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	cl, sv := n[0], n[1]
	data := randomContent(t, 512<<10)
	full, _ := cl.put(t, data) // the client holds it; the server gets half
	sv.copyPart(t, cl, full, func(i int) bool { return i%2 == 0 })
	m, _ := cl.st.Manifest(context.Background(), full)
	_, c := openCodec(t, cl, sv)

	// Have: the even chunks only.
	r := roundTrip(t, c, &proto.HaveRequest{ID: 1, Root: full})
	h, ok := r.(*proto.HaveResponse)
	if !ok || h.ID != 1 || h.Complete || int(h.NumChunks) != len(m.Chunks) {
		t.Fatalf("have: %#v", r)
	}
	for i := range m.Chunks {
		if h.Have.Has(i) != (i%2 == 0) {
			t.Fatalf("have bit %d = %t", i, h.Have.Has(i))
		}
	}
	wantCode(t, roundTrip(t, c, &proto.HaveRequest{ID: 2, Root: chunk.ManifestCID([]byte("nope"))}), proto.CodeNotFound)

	// Manifest: the bytes hash to the root.
	r = roundTrip(t, c, &proto.ManifestRequest{ID: 3, Root: full})
	if mr, ok := r.(*proto.ManifestResponse); !ok || !chunk.ManifestCID(mr.Data).Equals(full) {
		t.Fatalf("manifest: %#v", r)
	}

	// Blocks: held, not held, and pipelined.
	for i := 0; i < 4; i++ {
		if err := c.Send(&proto.BlockRequest{ID: uint64(10 + i), CID: m.Chunks[i].CID}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		r, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			wantCode(t, r, proto.CodeNotFound)
			continue
		}
		b, ok := r.(*proto.BlockResponse)
		if !ok || b.ID != uint64(10+i) || chunk.VerifyChunk(m.Chunks[i].CID, b.Data) != nil {
			t.Fatalf("block %d: %#v", i, r)
		}
	}

	if err := p2pstream.Send(c, &proto.Bye{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("after Bye: %v, want EOF", err)
	}
}

func TestServeResetsOnProtocolError(t *testing.T) {
	n := newNodes(t, 2, nodeConfig{})
	for _, m := range []proto.Msg{&proto.Hello{SwarmID: "x", Version: 1}, &proto.PlaceStart{ID: 1}, &proto.BlockResponse{ID: 1, CID: chunk.SumChunk(nil)}} {
		_, c := openCodec(t, n[0], n[1])
		if err := p2pstream.Send(c, m); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err == nil || errors.Is(err, io.EOF) {
			t.Errorf("after %s: %v, want a reset", m.Type(), err)
		}
	}
	// A PushBlock (type 0x07, removed from the protocol): no member may
	// write chunks into another's store.
	ps, _ := openCodec(t, n[0], n[1])
	fw := proto.NewFrameWriter(ps, proto.FrameOverhead)
	if err := fw.WriteFrame([]byte{0x07, 0xa0}); err != nil {
		t.Fatal(err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(ps); err == nil {
		t.Error("a PushBlock frame answered without a reset")
	}
	// Garbage bytes.
	s, _ := openCodec(t, n[0], n[1])
	if _, err := s.Write([]byte{0x05, 0xff, 0xff, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(s); err == nil {
		t.Error("garbage answered without a reset")
	}
}

func TestFetchRefusesLyingManifest(t *testing.T) {
	n := newNodes(t, 3, nodeConfig{})
	g, liar, honest := n[0], n[1], n[2]
	data := randomContent(t, 1<<20)
	root, _ := honest.put(t, data)
	other, _ := liar.put(t, randomContent(t, 1<<20))
	otherM, _ := liar.st.Manifest(context.Background(), other)
	enc, _ := otherM.Encode()
	liar.h.SetStreamHandler(proto.ExchangeProtocolFor(testSwarmID), func(s network.Stream) {
		c := proto.NewCodec(s)
		for {
			m, err := c.Recv()
			if err != nil {
				s.Reset()
				return
			}
			switch m := m.(type) {
			case *proto.ManifestRequest:
				_ = p2pstream.Send(c, &proto.ManifestResponse{ID: m.ID, Root: m.Root, Data: enc})
			case *proto.HaveRequest:
				_ = p2pstream.Send(c, &proto.ErrorResponse{ID: m.ID, Code: proto.CodeNotFound})
			default:
				s.Close()
				return
			}
		}
	})

	g.connect(t, liar)
	err := g.x.Fetch(context.Background(), root, nil)
	if !errors.Is(err, ErrNoHolder) || !strings.Contains(err.Error(), "1 lied") {
		t.Fatalf("fetch from a manifest liar only: %v", err)
	}
	if _, err := g.st.Manifest(context.Background(), root); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("lying manifest stored: %v", err)
	}

	g.connect(t, liar, honest) // the liar is asked first
	if err := g.x.Fetch(context.Background(), root, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g.content(t, root), data) {
		t.Fatal("fetched content differs")
	}
	if !g.logs.has("manifest that does not match", liar.h.ID().String()) {
		t.Error("the lie was not logged")
	}
}

func rateInf() rate.Limit { return rate.Inf }

func TestBandwidthLimits(t *testing.T) {
	b := newBandwidth()
	if b.up.Limit() != rateInf() || b.down.Limit() != rateInf() {
		t.Fatal("new limits are not unlimited")
	}
	b.set(16<<20, 1<<10)
	if b.up.Limit() != 16<<20 || b.up.Burst() < proto.MaxChunkSize {
		t.Errorf("upload %v burst %d", b.up.Limit(), b.up.Burst())
	}
	if b.down.Limit() != 1<<10 || b.down.Burst() < proto.MaxChunkSize {
		t.Errorf("download %v burst %d", b.down.Limit(), b.down.Burst())
	}
	// A maximal chunk passes a full bucket at once, even at 1 KiB/s.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := wait(ctx, b.down, proto.MaxChunkSize); err != nil {
		t.Fatal(err)
	}
	// The next one would take an hour: WaitN refuses at once under a deadline.
	if err := wait(ctx, b.down, proto.MaxChunkSize); err == nil {
		t.Fatal("second chunk passed a 1 KiB/s limit")
	}
	b.set(0, 0)
	if b.up.Limit() != rateInf() || b.down.Limit() != rateInf() {
		t.Fatal("0 is not unlimited")
	}
}

// TestDiscoveryThroughDHT: the getter is connected to one member only, which
// holds nothing; two others announced the content on the DHT.
func TestDiscoveryThroughDHT(t *testing.T) {
	n := newNodes(t, 4, nodeConfig{})
	g, hub, a, b := n[0], n[1], n[2], n[3]
	dhts := make([]*dht.IpfsDHT, len(n))
	for i, nd := range n {
		d, err := dht.New(nd.h,
			dht.ProtocolPrefix(protocol.ID("/annex-swarm-test")),
			dht.Mode(dht.ModeServer),
			dht.DisableValues(),
			dht.AddressFilter(func(a []ma.Multiaddr) []ma.Multiaddr { return a }),
		)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		dhts[i] = d
		nd.x.routing = func() routing.ContentRouting { return d }
	}
	a.connect(t, hub)
	b.connect(t, hub)
	g.connect(t, hub)
	g.mu.Lock()
	g.members = nil // only the DHT can find the holders
	g.mu.Unlock()
	swarmtest.WaitFor(t, 20*time.Second, "DHT routing tables", func() bool {
		return dhts[0].RoutingTable().Size() >= 1 && dhts[2].RoutingTable().Size() >= 1 && dhts[3].RoutingTable().Size() >= 1
	})

	data := randomContent(t, 2<<20)
	root, _ := a.put(t, data)
	b.put(t, data)
	for _, nd := range []*node{a, b} {
		if err := nd.x.Provide(context.Background(), root); err != nil {
			t.Fatal(err)
		}
	}
	// The DHT's own lookups may have connected the getter to a or b by
	// now; with Members empty, only provider records name them as holders.
	found := map[peer.ID]bool{}
	for p := range g.x.holders(context.Background(), root) {
		found[p] = true
	}
	if !found[a.h.ID()] || !found[b.h.ID()] || found[hub.h.ID()] {
		t.Fatalf("holders found: %v", found)
	}
	if p := g.fetchWhole(t, root, data); p.Sources[hub.h.ID().String()] != 0 || len(p.Sources) == 0 {
		t.Errorf("sources %v", p.Sources)
	}
	if err := n[0].x.Provide(context.Background(), root); err != nil {
		t.Errorf("getter announcing: %v", err)
	}
}

func TestProvideWithoutDHT(t *testing.T) {
	n := newNodes(t, 1, nodeConfig{})
	root, _ := n[0].put(t, []byte("hello"))
	if err := n[0].x.Provide(context.Background(), root); !errors.Is(err, ErrNoRouting) {
		t.Fatalf("provide without a DHT: %v", err)
	}
}
