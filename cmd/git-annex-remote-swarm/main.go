// Command git-annex-remote-swarm is git-annex's external special remote for
// annex-swarm. It speaks git-annex's line protocol on stdin/stdout and the
// control API to the local annex-swarmd. Set it up with:
//
//	git annex initremote swarm type=external externaltype=swarm encryption=none [home=DIR]
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/annex-swarm/annex-swarm/daemon/remote"
	"github.com/annex-swarm/annex-swarm/internal/version"
	"github.com/annex-swarm/annex-swarm/proto/annexremote"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if args[0] == "--version" || args[0] == "version" {
			fmt.Fprintf(stdout, "git-annex-remote-swarm %s\n", version.Version)
			return 0
		}
		fmt.Fprintln(stderr, "git-annex-remote-swarm: git-annex runs this program; it takes no arguments (see: git annex initremote NAME type=external externaltype=swarm encryption=none)")
		return 2
	}
	// Our own log goes to stderr, which git-annex shows; stdout carries
	// protocol lines only.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	err := annexremote.Serve(ctx, stdin, stdout, remote.New(), annexremote.Options{
		Configs:      remote.Configs,
		Availability: annexremote.Global,
		Logger:       log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "git-annex-remote-swarm: %v\n", err)
		return 1
	}
	return 0
}
