package rclone_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
	"github.com/annex-swarm/annex-swarm/chunk/rclone"
	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
)

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// startBackend starts a Backend for remote (under the config of w) and
// closes it when the test ends.
func startBackend(t *testing.T, w *rclonetest.WebDAV, remote string) *rclone.Backend {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := rclone.Start(ctx, rclone.Options{Remote: remote, Config: w.Config, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("starting the rclone backend: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// suiteStores maps each store folder the suite opens to its own folder of
// the remote, so that a reopened store finds its objects again.
type suiteStores struct {
	mu   sync.Mutex
	path map[string]string
}

func (s *suiteStores) remoteFor(dir string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.path[dir]
	if !ok {
		h := sha256.Sum256([]byte(dir))
		p = "suite/" + hex.EncodeToString(h[:8])
		s.path[dir] = p
	}
	return p
}

// TestSuite runs the shared store suite against a store whose objects live
// in a webdav account behind rclone.
func TestSuite(t *testing.T) {
	w := rclonetest.Start(t)
	stores := &suiteStores{path: map[string]string{}}
	var mu sync.Mutex
	backends := map[string]*rclone.Backend{}
	chunktest.Run(t, func(t *testing.T, dir string, opts chunk.Options) chunktest.Store {
		remote := rclonetest.RemoteName + ":" + stores.remoteFor(dir)
		mu.Lock()
		b := backends[remote]
		mu.Unlock()
		if b == nil {
			b = startBackend(t, w, remote)
			mu.Lock()
			backends[remote] = b
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(backends, remote)
				mu.Unlock()
			})
		}
		opts.Backend = b
		s, err := chunk.Open(dir, opts)
		if err != nil {
			t.Fatalf("opening the store: %v", err)
		}
		return s
	})
}

// openStore opens a store in a new folder over the backend.
func openStore(t *testing.T, dir string, b chunk.Backend, limit int64) *chunk.Store {
	t.Helper()
	s, err := chunk.Open(dir, chunk.Options{Backend: b, Limit: limit, Chunking: chunktest.Params})
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *chunk.Store, data []byte) cid.Cid {
	t.Helper()
	root, _, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	return root
}

// get reads the content back and compares it byte for byte.
func get(t *testing.T, s *chunk.Store, root cid.Cid, want []byte) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := s.WriteTo(context.Background(), root, &buf); err != nil {
		t.Fatalf("get %s: %v", root, err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("get %s: %d bytes differ from the %d put", root, buf.Len(), len(want))
	}
}
