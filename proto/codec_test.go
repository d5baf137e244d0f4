package proto

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"reflect"
	"runtime"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// rw joins a reader and a writer into an io.ReadWriter.
type rw struct {
	io.Reader
	io.Writer
}

func TestCodecRoundTrip(t *testing.T) {
	var stream bytes.Buffer
	c := NewCodec(rw{&stream, &stream})
	msgs := sampleMsgs(t)
	for _, m := range msgs {
		if err := c.Send(m); err != nil {
			t.Fatalf("sending %s: %v", m.Type(), err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, want := range msgs {
		got, err := c.Recv()
		if err != nil {
			t.Fatalf("receiving %s: %v", want.Type(), err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, want %#v", got, want)
		}
	}
	if _, err := c.Recv(); err != io.EOF {
		t.Fatalf("after the last message: got %v, want io.EOF", err)
	}
}

func TestCodecSendInvalidWritesNothing(t *testing.T) {
	var stream bytes.Buffer
	c := NewCodec(rw{&stream, &stream})
	if err := c.Send(&BlockRequest{ID: 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("got %v, want ErrInvalid", err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if stream.Len() != 0 {
		t.Fatalf("an invalid message wrote %d bytes", stream.Len())
	}
}

// TestCodecTypeBound declares a 5 MiB BlockRequest, which is under the
// global frame bound but over the request's own: it is refused before the
// body is allocated.
func TestCodecTypeBound(t *testing.T) {
	input := append(appendUvarintForTest(nil, 5<<20), byte(TypeBlockRequest), 0xa0)
	c := NewCodec(rw{bytes.NewReader(input), io.Discard})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := c.Recv()
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("refusing a 5 MiB request allocated %d bytes", got)
	}

	input = append(appendUvarintForTest(nil, 3), 0x7f, 0xa0, 0x00)
	if _, err := NewCodec(rw{bytes.NewReader(input), io.Discard}).Recv(); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type: got %v, want ErrUnknownType", err)
	}
	input = appendUvarintForTest(nil, 0)
	if _, err := NewCodec(rw{bytes.NewReader(input), io.Discard}).Recv(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty frame: got %v, want ErrMalformed", err)
	}
}

func TestCodecReuseFrames(t *testing.T) {
	a, b := testData(64, 1), testData(64, 2)
	for _, reuse := range []bool{false, true} {
		var stream bytes.Buffer
		var opts []CodecOption
		if reuse {
			opts = append(opts, ReuseFrames())
		}
		c := NewCodec(rw{&stream, &stream}, opts...)
		for _, d := range [][]byte{a, b} {
			if err := c.Send(&BlockResponse{ID: 1, CID: testCID(t, d), Data: d}); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Flush(); err != nil {
			t.Fatal(err)
		}
		m1, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Recv(); err != nil {
			t.Fatal(err)
		}
		first := m1.(*BlockResponse).Data
		if kept := bytes.Equal(first, a); kept == reuse {
			t.Errorf("ReuseFrames=%t: first payload still intact=%t", reuse, kept)
		}
	}
}

// TestPipelining runs a requester and a responder over net.Pipe: the
// requester queues 64 block requests and flushes once; the responder reads
// all 64 before answering (so all are in flight at once) and answers in
// reverse order, some with ErrorResponse; the requester matches by ID.
func TestPipelining(t *testing.T) {
	const n = 64
	client, server := net.Pipe()
	deadline := time.Now().Add(20 * time.Second) // a safety net against hangs, not an assertion
	for _, conn := range []net.Conn{client, server} {
		if err := conn.SetDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	blocks := make(map[cid.Cid][]byte, n)
	cids := make([]cid.Cid, n)
	for i := range n {
		d := testData(1000+i*1500, byte(i))
		cids[i] = testCID(t, d)
		blocks[cids[i]] = d
	}

	serverDone := make(chan error, 1)
	go func() { serverDone <- serveReversed(server, n, blocks) }()

	c := NewCodec(client)
	sendDone := make(chan error, 1)
	go func() {
		for i, id := range cids {
			if err := c.Send(&BlockRequest{ID: uint64(i + 100), CID: id}); err != nil {
				sendDone <- err
				return
			}
		}
		sendDone <- c.Flush()
	}()

	seen := make(map[uint64]bool, n)
	var errorsSeen int
	for range n {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("receiving: %v", err)
		}
		switch m := m.(type) {
		case *BlockResponse:
			i := int(m.ID) - 100
			if i < 0 || i >= n || seen[m.ID] || !m.CID.Equals(cids[i]) {
				t.Fatalf("unexpected response ID %d for %s", m.ID, m.CID)
			}
			seen[m.ID] = true
			if got := testCID(t, m.Data); !got.Equals(m.CID) {
				t.Fatalf("response %d: data hashes to %s, want %s", m.ID, got, m.CID)
			}
		case *ErrorResponse:
			if seen[m.ID] || m.Code != CodeNotFound || (m.ID-100)%7 != 0 {
				t.Fatalf("unexpected error response %+v", m)
			}
			seen[m.ID] = true
			errorsSeen++
		default:
			t.Fatalf("unexpected %s", m.Type())
		}
	}
	if err := <-sendDone; err != nil {
		t.Fatalf("sending requests: %v", err)
	}
	if len(seen) != n || errorsSeen != (n+6)/7 {
		t.Fatalf("%d answers, %d errors; want %d answers, %d errors", len(seen), errorsSeen, n, (n+6)/7)
	}
	if err := c.Send(&Bye{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := <-serverDone; err != nil {
		t.Fatalf("responder: %v", err)
	}
}

// serveReversed reads n block requests, answers them last first (every
// seventh with NotFound), then expects a Bye and closes the stream.
func serveReversed(conn net.Conn, n int, blocks map[cid.Cid][]byte) error {
	defer conn.Close()
	c := NewCodec(conn)
	reqs := make([]*BlockRequest, 0, n)
	for range n {
		m, err := c.Recv()
		if err != nil {
			return fmt.Errorf("reading request %d: %w", len(reqs), err)
		}
		req, ok := m.(*BlockRequest)
		if !ok {
			return fmt.Errorf("got %s, want BlockRequest", m.Type())
		}
		reqs = append(reqs, req)
	}
	for i := n - 1; i >= 0; i-- {
		var resp Msg = &BlockResponse{ID: reqs[i].ID, CID: reqs[i].CID, Data: blocks[reqs[i].CID]}
		if (reqs[i].ID-100)%7 == 0 {
			resp = &ErrorResponse{ID: reqs[i].ID, Code: CodeNotFound, Message: "gone"}
		}
		if err := c.Send(resp); err != nil {
			return err
		}
	}
	if err := c.Flush(); err != nil {
		return err
	}
	m, err := c.Recv()
	if err != nil {
		return fmt.Errorf("waiting for Bye: %w", err)
	}
	if _, ok := m.(*Bye); !ok {
		return fmt.Errorf("got %s, want Bye", m.Type())
	}
	return nil
}

// TestRulesExchange plays the rules protocol: the opener's Hello, the
// responder's Hello, then the side with the older version asks for the
// definition. net.Pipe has no buffering, so a wrong turn order deadlocks.
func TestRulesExchange(t *testing.T) {
	a, b := net.Pipe()
	deadline := time.Now().Add(20 * time.Second) // a safety net against hangs, not an assertion
	for _, conn := range []net.Conn{a, b} {
		if err := conn.SetDeadline(deadline); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	signed := []byte("-----BEGIN PGP SIGNED MESSAGE-----\nversion = 5\n")
	done := make(chan error, 1)
	go func() {
		c := NewCodec(b)
		expect := func(want MsgType) error {
			m, err := c.Recv()
			if err != nil {
				return err
			}
			if m.Type() != want {
				return fmt.Errorf("got %s, want %s", m.Type(), want)
			}
			return nil
		}
		if err := expect(TypeHello); err != nil {
			done <- err
			return
		}
		if err := c.Send(&Hello{SwarmID: "s1", Version: 5}); err != nil {
			done <- err
			return
		}
		if err := c.Flush(); err != nil {
			done <- err
			return
		}
		if err := expect(TypeGetRules); err != nil {
			done <- err
			return
		}
		if err := c.Send(&Rules{Signed: signed}); err != nil {
			done <- err
			return
		}
		done <- c.Flush()
	}()

	c := NewCodec(a)
	if err := c.Send(&Hello{SwarmID: "s1", Version: 4}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err := c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := m.(*Hello); !ok || h.SwarmID != "s1" || h.Version != 5 {
		t.Fatalf("got %#v, want Hello s1 v5", m)
	}
	if err := c.Send(&GetRules{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	m, err = c.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := m.(*Rules); !ok || !bytes.Equal(r.Signed, signed) {
		t.Fatalf("got %#v, want the signed rules", m)
	}
	if err := <-done; err != nil {
		t.Fatalf("peer: %v", err)
	}
}

func TestProtocolIDs(t *testing.T) {
	if got := ExchangeProtocolFor("abc"); got != "/annex-swarm/abc/xchg/1.0.0" {
		t.Errorf("ExchangeProtocolFor: %s", got)
	}
	if got := RulesProtocolFor("abc"); got != "/annex-swarm/abc/rules/1.0.0" {
		t.Errorf("RulesProtocolFor: %s", got)
	}
}

func TestErrorResponseIsError(t *testing.T) {
	var err error = &ErrorResponse{ID: 1, Code: CodeBusy, Message: "later"}
	if err.Error() != "peer: busy: later" {
		t.Errorf("got %q", err.Error())
	}
	if s := ErrorCode(77).String(); s != "error code 77" {
		t.Errorf("unknown code: %q", s)
	}
}
