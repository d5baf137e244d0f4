package rclone_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
	"github.com/annex-swarm/annex-swarm/chunk/rclone"
	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
)

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putAsync starts a Put of data and returns where its error arrives.
func putAsync(s *chunk.Store, data []byte) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		_, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
		done <- err
	}()
	return done
}

// checkSound repairs what a failed write left and checks that the store
// is sound and takes the content again.
func checkSound(t *testing.T, s *chunk.Store, data []byte) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Fsck(ctx, true); err != nil {
		t.Fatalf("fsck repair: %v", err)
	}
	rep, err := s.Fsck(ctx, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("fsck after repair: %+v, %v", rep, err)
	}
	get(t, s, put(t, s, data), data)
}

// TestServerRestartedMidTransfer kills the webdav server while a put
// uploads and starts it again at once: the put succeeds through the
// retries or fails with a clear error, and the store stays sound.
func TestServerRestartedMidTransfer(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.RemoteName+":bucket")
	s := openStore(t, t.TempDir(), b, 0)
	data := chunktest.Content(40, 4<<20)
	done := putAsync(s, data)
	account := filepath.Join(w.Dir, "bucket")
	waitFor(t, time.Minute, "the first uploads", func() bool { return len(accountFiles(t, account)) >= 5 })
	w.StopServer()
	w.StartServer()
	if err := <-done; err != nil {
		if !strings.Contains(err.Error(), "rclone") {
			t.Fatalf("put failed with an unclear error: %v", err)
		}
		t.Logf("put failed (allowed): %v", err)
	}
	checkSound(t, s, data)
	if err := s.Health(); err != nil {
		t.Errorf("health after recovery: %v", err)
	}
}

// TestServerGone kills the webdav server for good while a put uploads: the
// put fails within the retry bound with a clear error, Health says the
// backend is failing, and once the server is back the store works again.
func TestServerGone(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.RemoteName+":bucket")
	s := openStore(t, t.TempDir(), b, 0)
	data := chunktest.Content(41, 4<<20)
	done := putAsync(s, data)
	account := filepath.Join(w.Dir, "bucket")
	waitFor(t, time.Minute, "the first uploads", func() bool { return len(accountFiles(t, account)) >= 5 })
	w.StopServer()
	start := time.Now()
	err := <-done
	if err == nil {
		t.Fatal("put succeeded with the account gone")
	}
	t.Logf("put failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !strings.Contains(err.Error(), "rclone") {
		t.Errorf("unclear error: %v", err)
	}
	herr := s.Health()
	if !errors.Is(herr, chunk.ErrBackend) {
		t.Fatalf("health with the account gone: %v, want ErrBackend", herr)
	}
	t.Logf("health: %v", herr)
	w.StartServer()
	checkSound(t, s, data)
	if err := s.Health(); err != nil {
		t.Errorf("health after the account came back: %v", err)
	}
}

// TestRcdRestarted kills rclone rcd: the supervisor starts another (new
// port, new credentials) and the store goes on working.
func TestRcdRestarted(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.RemoteName+":bucket")
	s := openStore(t, t.TempDir(), b, 0)
	data := chunktest.Content(42, 200<<10)
	root := put(t, s, data)
	old := rclone.RcdPID(b)
	rclone.KillRcd(b)
	get(t, s, root, data) // retried until the new rcd answers
	waitFor(t, 30*time.Second, "a new rcd", func() bool { p := rclone.RcdPID(b); return p != 0 && p != old })
	get(t, s, put(t, s, chunktest.Content(43, 100<<10)), chunktest.Content(43, 100<<10))
}
