package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// The replication commands: where and rm.

func (e *env) runWhere(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("where", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError(stderr, "where", "usage: annex-swarm where CID [--json]")
	}
	res, err := e.client().Where(ctx, pos[0])
	if err != nil {
		return fail(stderr, "where", err)
	}
	if *asJSON {
		printJSON(stdout, res)
		return 0
	}
	fmt.Fprintf(stdout, "%s: %d of %d copies\n", res.CID, res.Copies, res.Target)
	for _, h := range res.Holders {
		fmt.Fprintf(stdout, "  %-12s %s\n", h.Name, h.PeerID)
	}
	return 0
}

func (e *env) runRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rm", flag.ContinueOnError)
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError(stderr, "rm", "usage: annex-swarm rm CID")
	}
	res, err := e.client().Remove(ctx, pos[0])
	if err != nil {
		return fail(stderr, "rm", err)
	}
	fmt.Fprintf(stdout, "removed %s (members that are offline remove it when they come back)\n", res.CID)
	return 0
}
