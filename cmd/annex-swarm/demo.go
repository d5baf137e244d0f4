package main

import (
	"context"
	"flag"
	"io"

	"github.com/annex-swarm/annex-swarm/daemon/demo"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	keep := fs.Bool("keep", false, "keep the demo folder")
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return usageError(stderr, "demo", "usage: annex-swarm demo [--keep]")
	}
	if err := demo.Run(ctx, demo.Options{Out: stdout, Keep: *keep}); err != nil {
		return fail(stderr, "demo", err)
	}
	return 0
}
