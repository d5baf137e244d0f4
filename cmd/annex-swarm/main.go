// Command annex-swarm is the CLI of annex-swarm: it talks to the local
// annex-swarmd through its control API, and authors keys and swarm rules
// offline.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/annex-swarm/annex-swarm/internal/home"
	"github.com/annex-swarm/annex-swarm/internal/version"
)

// command runs one subcommand with the arguments after its name and returns
// the exit status.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// env is what the daemon commands share: the resolved home.
type env struct {
	home home.Home
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	homeFlag, args, err := takeHome(args)
	if err != nil {
		fmt.Fprintf(stderr, "annex-swarm: %v\n", err)
		return 2
	}
	home, err := home.Resolve(homeFlag)
	if err != nil {
		fmt.Fprintf(stderr, "annex-swarm: %v\n", err)
		return 1
	}
	e := &env{home: home}
	commands := map[string]command{
		"id":      e.runID,
		"status":  e.runStatus,
		"put":     e.runPut,
		"get":     e.runGet,
		"fsck":    e.runFsck,
		"join":    e.runJoin,
		"leave":   e.runLeave,
		"where":   e.runWhere,
		"rm":      e.runRm,
		"version": runVersion,
		"key":     runKey,
		"swarm":   runSwarm,
		"member":  runMember,
		"rules":   e.runRules,
		"admin":   runAdmin,
		"demo":    runDemo,
	}
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, commands)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "annex-swarm: unknown command %q (see annex-swarm help)\n", args[0])
		return 2
	}
	return cmd(ctx, args[1:], stdout, stderr)
}

// takeHome removes --home DIR (or --home=DIR) from anywhere in args, so every
// command accepts it in any position.
func takeHome(args []string) (string, []string, error) {
	var home string
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--home" || a == "-home":
			if i+1 >= len(args) {
				return "", nil, fmt.Errorf("--home needs a folder")
			}
			home = args[i+1]
			i++
		case strings.HasPrefix(a, "--home=") || strings.HasPrefix(a, "-home="):
			_, home, _ = strings.Cut(a, "=")
		default:
			out = append(out, a)
		}
	}
	return home, out, nil
}

func usage(w io.Writer, commands map[string]command) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "usage: annex-swarm [--home DIR] COMMAND [ARGS]\n\ncommands: %s\n", strings.Join(names, ", "))
}

func runVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintf(stdout, "annex-swarm %s\n", version.Version)
	return 0
}
