package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/daemon/sdnotify"
)

// readyWait bounds how long the daemon may take to answer on its control
// socket before readiness is given up on (systemd's TimeoutStartSec is
// usually shorter and acts first).
const readyWait = 10 * time.Minute

// runNotifying runs the daemon; under systemd (a Type=notify unit) it sends
// READY=1 once the control socket answers and STOPPING=1 when asked to stop.
func runNotifying(ctx context.Context, log *slog.Logger, h daemon.Home, run func(context.Context) error) error {
	sock := sdnotify.Socket()
	done := make(chan error, 1)
	var ended atomic.Bool // the daemon stopped: another one may own the socket
	go func() { err := run(ctx); ended.Store(true); done <- err }()
	if sock == "" {
		return <-done
	}
	readyCtx, cancel := context.WithTimeout(ctx, readyWait)
	defer cancel()
	go func() {
		id, err := waitAnswer(readyCtx, h)
		if ended.Load() {
			return
		}
		if err != nil {
			log.Warn("not telling systemd we are ready", "err", err)
			return
		}
		state := fmt.Sprintf("%s\nSTATUS=serving %s as %s\nMAINPID=%d", sdnotify.Ready, h.SocketPath(), id.PeerID, os.Getpid())
		if err := sdnotify.Notify(sock, state); err != nil {
			log.Warn("telling systemd we are ready", "err", err)
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	cancel()
	if err := sdnotify.Notify(sock, sdnotify.Stopping); err != nil {
		log.Warn("telling systemd we are stopping", "err", err)
	}
	return <-done
}

// waitAnswer asks the control socket for the daemon's identity until it
// answers or ctx ends.
func waitAnswer(ctx context.Context, h daemon.Home) (client.ID, error) {
	cl := client.New(h.Dir)
	for {
		id, err := cl.ID(ctx)
		if err == nil {
			return id, nil
		}
		select {
		case <-ctx.Done():
			return client.ID{}, fmt.Errorf("the control socket did not answer: %w", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
