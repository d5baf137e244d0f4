package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/annex-swarm/annex-swarm/rules"
)

// The commands that hand swarm definitions to the local daemon.

func (e *env) runJoin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("join", flag.ContinueOnError)
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError(stderr, "join", "usage: annex-swarm join RULES")
	}
	signed, err := readRulesFile(pos[0])
	if err != nil {
		return fail(stderr, "join", err)
	}
	res, err := e.client().Join(ctx, signed)
	if err != nil {
		return fail(stderr, "join", err)
	}
	fmt.Fprintf(stdout, "joined swarm %s (id %s) at version %d\n", res.Swarm.Name, res.Swarm.ID, res.Swarm.Version)
	return 0
}

// runRulesPush is `annex-swarm rules push RULES`.
func (e *env) runRulesPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rules push", flag.ContinueOnError)
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError(stderr, "rules push", "usage: annex-swarm rules push RULES")
	}
	signed, err := readRulesFile(pos[0])
	if err != nil {
		return fail(stderr, "rules push", err)
	}
	res, err := e.client().PushRules(ctx, signed)
	if err != nil {
		return fail(stderr, "rules push", err)
	}
	if res.Adopted {
		fmt.Fprintf(stdout, "adopted version %d of swarm %s; spreading to the members\n", res.Swarm.Version, res.Swarm.Name)
	}
	return 0
}

func (e *env) runLeave(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("leave", flag.ContinueOnError)
	if pos, err := parseArgs(fs, args); err != nil || len(pos) != 0 {
		return usageError(stderr, "leave", "usage: annex-swarm leave")
	}
	if err := e.client().Leave(ctx); err != nil {
		return fail(stderr, "leave", err)
	}
	fmt.Fprintln(stdout, "left the swarm")
	return 0
}

func readRulesFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > rules.MaxDocumentSize {
		return nil, fmt.Errorf("%s is %d bytes, more than a swarm definition may be (%d)", path, st.Size(), rules.MaxDocumentSize)
	}
	return os.ReadFile(path)
}
