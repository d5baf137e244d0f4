package annexremote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveString runs Serve on a fixed input and returns its output and error.
func serveString(t *testing.T, b Backend, opts Options, in string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out syncBuffer
	if opts.WorkDir == "" {
		opts.WorkDir = "/w"
	}
	err := Serve(ctx, strings.NewReader(in), &out, b, opts)
	if ctx.Err() != nil {
		t.Fatalf("Serve hung: %v", err)
	}
	return out.String(), err
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServeLineTooLong(t *testing.T) {
	out, err := serveString(t, newMemBackend(), Options{}, strings.Repeat("A", MaxLineBytes+1)+"\nGETCOST\n")
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("err = %v, want ErrLineTooLong", err)
	}
	if !strings.HasPrefix(out, "VERSION 1\nERROR ") || strings.Contains(out, "COST") {
		t.Fatalf("output %q: want ERROR and nothing after the long line", out)
	}
}

func TestServeEOFEndsCleanly(t *testing.T) {
	out, err := serveString(t, newMemBackend(), Options{}, "GETAVAILABILITY")
	if err != nil || out != "VERSION 1\nAVAILABILITY GLOBAL\n" {
		t.Fatalf("got %q, %v", out, err)
	}
	out, err = serveString(t, newMemBackend(), Options{Availability: Local, NoAsync: true}, "EXTENSIONS ASYNC INFO\nGETAVAILABILITY\n")
	if err != nil || out != "VERSION 1\nEXTENSIONS INFO GETGITREMOTENAME\nAVAILABILITY LOCAL\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestServeUnexpectedReply(t *testing.T) {
	out, err := serveString(t, newMemBackend(), Options{}, "PREPARE\nGETCOST\n")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
	if !strings.Contains(out, "GETCONFIG home\n") || strings.Contains(out, "PREPARE-SUCCESS") {
		t.Fatalf("output %q", out)
	}
}

func TestServeTooManyJobs(t *testing.T) {
	_, err := serveString(t, newMemBackend(), Options{MaxJobs: 2},
		"EXTENSIONS ASYNC\nJ 1 GETCOST\nJ 2 GETCOST\nJ 3 GETCOST\n")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

// startServe runs Serve on pipes for tests that drive it step by step.
type pipeServe struct {
	in   *io.PipeWriter
	out  *LineReader
	done chan error
}

func startServe(t *testing.T, ctx context.Context, b Backend, opts Options) *pipeServe {
	t.Helper()
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	p := &pipeServe{in: inW, out: NewLineReader(outR, 0), done: make(chan error, 1)}
	go func() {
		err := Serve(ctx, inR, outW, b, opts)
		outW.CloseWithError(io.EOF)
		p.done <- err
	}()
	t.Cleanup(func() { inW.Close(); outR.Close() })
	p.expect(t, "VERSION 1")
	return p
}

func (p *pipeServe) send(t *testing.T, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if _, err := io.WriteString(p.in, l+"\n"); err != nil {
			t.Fatalf("sending %q: %v", l, err)
		}
	}
}

func (p *pipeServe) expect(t *testing.T, want string) {
	t.Helper()
	got, err := p.out.ReadLine()
	if err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// wait waits for Serve to return, reading (and dropping) its output
// meanwhile.
func (p *pipeServe) wait(t *testing.T) error {
	t.Helper()
	go func() {
		for {
			if _, err := p.out.ReadLine(); err != nil {
				return
			}
		}
	}()
	select {
	case err := <-p.done:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func preparedAsync(t *testing.T, ctx context.Context, b Backend) *pipeServe {
	p := startServe(t, ctx, b, Options{ProgressInterval: time.Hour})
	p.send(t, "EXTENSIONS ASYNC", "J 1 PREPARE")
	p.expect(t, "EXTENSIONS INFO ASYNC GETGITREMOTENAME")
	p.expect(t, "J 1 GETCONFIG home")
	p.send(t, "J 1 VALUE /h")
	p.expect(t, "J 1 DEBUG connected to /h")
	p.expect(t, "J 1 PREPARE-SUCCESS")
	p.send(t, "J 1 TRANSFER STORE BLOCK-k f")
	p.expect(t, "J 1 PROGRESS 5")
	p.expect(t, "J 1 PROGRESS 10")
	p.expect(t, "J 1 TRANSFER-SUCCESS STORE BLOCK-k")
	return p
}

// TestServeBusyJobOverflow: git-annex sends lines to a job that is busy; the
// inbox bound turns that into ErrProtocol, and the busy transfer is cancelled.
func TestServeBusyJobOverflow(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := preparedAsync(t, ctx, newMemBackend())
	p.send(t, "J 1 TRANSFER RETRIEVE BLOCK-k f")
	for range jobInbox + 1 {
		p.send(t, "J 1 GETCOST")
	}
	if err := p.wait(t); !errors.Is(err, ErrProtocol) {
		t.Fatalf("err = %v, want ErrProtocol", err)
	}
}

// TestServeEOFDrains: at the end of input, running and queued requests are
// still answered.
func TestServeEOFDrains(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p := preparedAsync(t, ctx, newMemBackend())
	p.send(t, "J 1 TRANSFER RETRIEVE BLOCK-k f", "J 2 CHECKPRESENT RELEASE-k", "J 3 GETCOST")
	p.in.Close()
	var got []string
	for {
		l, err := p.out.ReadLine()
		if err != nil {
			break
		}
		got = append(got, l)
	}
	if err := p.wait(t); err != nil {
		t.Fatalf("err = %v, want nil at end of input", err)
	}
	slices.Sort(got)
	want := []string{"J 1 PROGRESS 10", "J 1 PROGRESS 5", "J 1 TRANSFER-SUCCESS RETRIEVE BLOCK-k",
		"J 2 CHECKPRESENT-FAILURE RELEASE-k", "J 3 COST 200"}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestServeContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := preparedAsync(t, ctx, newMemBackend())
	p.send(t, "J 1 TRANSFER RETRIEVE BLOCK-k f")
	cancel()
	if err := p.wait(t); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// keepConfig keeps the Config it was given, which it must not do.
type keepConfig struct {
	*memBackend
	cfg Config
}

func (k *keepConfig) Prepare(ctx context.Context, cfg Config) error {
	k.cfg = cfg
	return nil
}

func TestConfigExpires(t *testing.T) {
	b := &keepConfig{memBackend: newMemBackend()}
	out, err := serveString(t, b, Options{}, "PREPARE\n")
	if err != nil || out != "VERSION 1\nPREPARE-SUCCESS\n" {
		t.Fatalf("got %q, %v", out, err)
	}
	ctx := context.Background()
	if _, err := b.cfg.Get(ctx, "home"); !errors.Is(err, ErrConfigExpired) {
		t.Errorf("Get after the call: %v, want ErrConfigExpired", err)
	}
	if err := b.cfg.Set(ctx, "home", "x"); !errors.Is(err, ErrConfigExpired) {
		t.Errorf("Set after the call: %v, want ErrConfigExpired", err)
	}
	if _, err := b.cfg.GitRemoteName(ctx); !errors.Is(err, ErrConfigExpired) {
		t.Errorf("GitRemoteName after the call: %v, want ErrConfigExpired", err)
	}
	if _, err := b.cfg.UUID(ctx); !errors.Is(err, ErrConfigExpired) {
		t.Errorf("UUID after the call: %v, want ErrConfigExpired", err)
	}
	if err := b.cfg.Info(ctx, "x"); !errors.Is(err, ErrConfigExpired) {
		t.Errorf("Info after the call: %v, want ErrConfigExpired", err)
	}
}

// uuidBackend asks for the UUID and sets a config during InitRemote.
type uuidBackend struct{ *memBackend }

func (u uuidBackend) InitRemote(ctx context.Context, cfg Config) error {
	id, err := cfg.UUID(ctx)
	if err != nil {
		return err
	}
	if err := cfg.Set(ctx, "bad name", "v"); !errors.Is(err, ErrBadLine) {
		return errors.New("SETCONFIG with a space in the name was not refused")
	}
	return cfg.Set(ctx, "uuid", id)
}

func TestConfigUUIDAndSet(t *testing.T) {
	out, err := serveString(t, uuidBackend{newMemBackend()}, Options{}, "INITREMOTE\nVALUE 1234-5678\n")
	if err != nil || out != "VERSION 1\nGETUUID\nSETCONFIG uuid 1234-5678\nINITREMOTE-SUCCESS\n" {
		t.Fatalf("got %q, %v", out, err)
	}
}

func TestServeRefusesBadConfigName(t *testing.T) {
	var out bytes.Buffer
	err := Serve(context.Background(), strings.NewReader(""), &out, newMemBackend(),
		Options{Configs: []ConfigSetting{{Name: "two words", Description: "x"}}})
	if err == nil || out.Len() != 0 {
		t.Fatalf("err = %v, output %q; want an error before any output", err, out.String())
	}
}
