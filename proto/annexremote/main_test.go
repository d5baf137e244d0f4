package annexremote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"testing"
)

// Environment variables that make the test binary act as an external
// special remote for the real git-annex (TestRealGitAnnex).
const (
	envRemote     = "ANNEXREMOTE_TEST_REMOTE"     // "1": serve a dirBackend on stdin/stdout
	envNoAsync    = "ANNEXREMOTE_TEST_NOASYNC"    // "1": do not offer ASYNC
	envTranscript = "ANNEXREMOTE_TEST_TRANSCRIPT" // file to append the protocol lines to
)

func TestMain(m *testing.M) {
	if os.Getenv(envRemote) == "1" {
		os.Exit(serveAsRemote())
	}
	os.Exit(m.Run())
}

// serveAsRemote runs the test binary as git-annex-remote-fakeswarm.
func serveAsRemote() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var in io.Reader = os.Stdin
	var out io.Writer = os.Stdout
	if path := os.Getenv(envTranscript); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		var mu sync.Mutex
		pid := os.Getpid()
		in = io.TeeReader(in, &transcript{mu: &mu, w: f, prefix: fmt.Sprintf("%d > ", pid)})
		out = io.MultiWriter(out, &transcript{mu: &mu, w: f, prefix: fmt.Sprintf("%d < ", pid)})
	}
	opts := Options{
		Configs: []ConfigSetting{{Name: "directory", Description: "where the fake remote keeps its files"}},
		NoAsync: os.Getenv(envNoAsync) == "1",
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if err := Serve(ctx, in, out, &dirBackend{}, opts); err != nil {
		fmt.Fprintln(os.Stderr, "git-annex-remote-fakeswarm:", err)
		return 1
	}
	return 0
}

// transcript writes the lines passing through it to w, each with a prefix.
type transcript struct {
	mu      *sync.Mutex
	w       io.Writer
	prefix  string
	partial []byte
}

func (t *transcript) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		fmt.Fprintf(t.w, "%s%s\n", t.prefix, t.partial[:i])
		t.partial = t.partial[i+1:]
	}
	return len(p), nil
}
