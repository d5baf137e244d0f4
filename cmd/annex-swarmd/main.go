// Command annex-swarmd is the annex-swarm daemon: it runs in the foreground
// until SIGINT or SIGTERM, then stops cleanly.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/annex-swarm/annex-swarm/daemon"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

type listFlag []string

func (l *listFlag) String() string     { return fmt.Sprint(*l) }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func run(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("annex-swarmd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	home := fs.String("home", "", "home folder (default $ANNEX_SWARM_HOME or ~/.annex-swarm)")
	var listen listFlag
	fs.Var(&listen, "listen", "libp2p listen multiaddr (repeatable; replaces config.toml's listen)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text (key=value lines) or json (one object a line, for journald and log shippers)")
	version := fs.Bool("version", false, "print the version and exit")
	syncEvery := fs.Duration("sync-interval", 0, "how often to reconnect to members and compare rules versions (default 10s)")
	repairEvery := fs.Duration("repair-interval", 0, "how often to re-check the copies of the contents held (default 30s)")
	auditEvery := fs.Duration("audit-interval", 0, "how often to challenge the other holders of the contents held to prove they still hold them (default 1h)")
	rebuildIndex := fs.Bool("rebuild-index", false, "rebuild the store index from the stored chunks and manifests before starting")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintf(os.Stdout, "annex-swarmd %s\n", daemon.Version)
		return 0
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "annex-swarmd: --log-level: %v\n", err)
		return 2
	}
	hopts := &slog.HandlerOptions{Level: lvl}
	var log *slog.Logger
	switch *format {
	case "text":
		log = slog.New(slog.NewTextHandler(stderr, hopts))
	case "json":
		log = slog.New(slog.NewJSONHandler(stderr, hopts))
	default:
		fmt.Fprintf(stderr, "annex-swarmd: --log-format: %q is neither text nor json\n", *format)
		return 2
	}
	h, err := daemon.ResolveHome(*home)
	if err != nil {
		fmt.Fprintf(stderr, "annex-swarmd: %v\n", err)
		return 1
	}
	err = runNotifying(ctx, log, h, func(ctx context.Context) error {
		return daemon.Run(ctx, daemon.Options{Home: h, Listen: listen, Logger: log, SyncInterval: *syncEvery, RepairInterval: *repairEvery, AuditInterval: *auditEvery, RebuildIndex: *rebuildIndex})
	})
	if err != nil {
		fmt.Fprintf(stderr, "annex-swarmd: %v\n", err)
		if errors.Is(err, daemon.ErrAlreadyRunning) {
			return 3
		}
		return 1
	}
	return 0
}
