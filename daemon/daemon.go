package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/internal/version"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/audit"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
)

// Version is the program version reported by `version` and the status.
const Version = version.Version

// shutdownGrace is how long a stopping daemon lets in-flight requests finish
// before their contexts are cancelled (and their writes roll back).
const shutdownGrace = 30 * time.Second

// Options configure a daemon run.
type Options struct {
	Home Home
	// Listen, when not empty, replaces the listen addresses of config.toml.
	Listen []string
	Logger *slog.Logger
	// SyncInterval is how often members reconnect and compare definition
	// versions; membership.DefaultSyncInterval when zero.
	SyncInterval time.Duration
	// RepairInterval is the period of the replication repair round;
	// replicate.DefaultRepairInterval when zero.
	RepairInterval time.Duration
	// AuditInterval is the period of the storage audit round;
	// audit.DefaultInterval when zero.
	AuditInterval time.Duration
	// RebuildIndex rebuilds the store index from the stored objects even
	// if it looks sound (a damaged one is rebuilt anyway).
	RebuildIndex bool
}

// Daemon is one running annex-swarmd: the composition root that wires the
// store, the libp2p host and the control API.
type Daemon struct {
	home    Home
	cfg     Config
	log     *slog.Logger
	store   *chunk.Store
	host    host.Host
	gater   *membership.Gater
	nat     *membership.NAT
	members *membership.Membership
	xchg    *exchange.Exchange
	repl    *replicate.Replicator
	audit   *audit.Auditor
	// bg counts the loops of the membership, the exchange and the
	// replicator (each waits for the work it owns before it returns).
	bg    sync.WaitGroup
	start time.Time

	// inflight counts running control requests, so that the store is closed
	// only after the last one has finished or rolled back.
	inflight sync.WaitGroup
	// fromFile serializes the puts of one content served from files
	// (daemon/nocopy.go).
	fromFile rootLocks

	obs observers

	effective     atomic.Pointer[rules.Limits]
	bytesSent     atomic.Int64
	bytesReceived atomic.Int64
}

// Run starts the daemon and serves until ctx is cancelled, then stops cleanly:
// in-flight requests get shutdownGrace to finish, then are cancelled.
func Run(ctx context.Context, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	h := opts.Home
	if err := h.Ensure(); err != nil {
		return err
	}
	lock, err := lockHome(h)
	if err != nil {
		return err
	}
	defer lock.Close()

	cfg, err := LoadConfig(h.ConfigPath())
	if err != nil {
		return err
	}
	if len(opts.Listen) > 0 {
		cfg.Listen = opts.Listen
	}
	key, err := LoadOrCreateIdentity(h.KeyPath())
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(ctx, h.StoreDir(), cfg.Store, chunk.Options{Limit: cfg.Limits.Storage, Logger: log.With("component", "store")}, opts.RebuildIndex, log)
	if err != nil {
		return fmt.Errorf("opening store: %w", err)
	}
	defer closeStore()

	g := membership.NewGater()
	nat := membership.NewNAT(g, log)
	hst, err := membership.NewHostNAT(key, cfg.Listen, g, nat)
	if err != nil {
		return err
	}
	defer hst.Close()
	defer nat.Close()

	d := &Daemon{home: h, cfg: cfg, log: log, store: st, host: hst, gater: g, nat: nat, start: time.Now()}
	d.members = membership.New(hst, g, membership.Options{
		Logger:   log,
		Interval: opts.SyncInterval,
		Persist:  d.persistRules,
		// Run closes it after the DHT, before the host closes.
		DHTRecords: h.DHTRecordsPath(),
	})
	d.xchg = d.newExchange()
	d.repl = d.newReplicator(opts.RepairInterval)
	d.audit = d.newAuditor(opts.AuditInterval)
	d.members.OnAdopt(d.follow)
	d.dropStaleNocopy()
	runCtx, stopRun := context.WithCancel(ctx)
	// The loops and everything they own (served streams, placements,
	// announcements) end before the host and the store close (the defers
	// above run after this one).
	defer func() { stopRun(); d.bg.Wait() }()
	d.bg.Go(func() { d.members.Run(runCtx) })
	d.bg.Go(func() { d.xchg.Run(runCtx) })
	d.bg.Go(func() { d.repl.Run(runCtx) })
	d.bg.Go(func() { d.audit.Run(runCtx) })
	if err := d.restoreRules(ctx); err != nil {
		return err
	}
	d.bg.Go(func() { nat.Run(runCtx) })
	if err := d.startObservers(runCtx); err != nil {
		return err
	}
	return d.serve(ctx)
}

// serve runs the control API on HOME/control.sock until ctx ends.
func (d *Daemon) serve(ctx context.Context) error {
	sock := d.home.SocketPath()
	// We hold the home lock, so a socket file left here is stale.
	if err := os.Remove(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing stale socket %s: %w", sock, err)
	}
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", sock, err)
	}
	defer os.Remove(sock)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("setting mode of %s: %w", sock, err)
	}

	reqCtx, cancelRequests := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRequests()
	srv := &http.Server{
		Handler:           peerGate(d.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return reqCtx },
		ConnContext:       withPeerCred,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	d.log.Info("annex-swarmd started", "home", d.home.Dir, "peer", d.host.ID(), "addrs", d.host.Addrs(), "version", Version)

	select {
	case err := <-errc:
		return fmt.Errorf("serving the control API: %w", err)
	case <-ctx.Done():
	}
	d.log.Info("stopping: letting in-flight requests finish", "grace", shutdownGrace)
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		d.log.Warn("in-flight requests cancelled", "err", err)
		cancelRequests()
		srv.Close()
	}
	d.inflight.Wait()
	d.log.Info("annex-swarmd stopped")
	return nil
}
