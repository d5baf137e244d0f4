// Package harness starts real annex-swarm processes for end-to-end tests: N
// annex-swarmd daemons, each with its own temporary home, listening on
// loopback only, and the annex-swarm CLI pointed at any of them.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/daemon/localswarm"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// Binaries are the built programs the harness runs.
type Binaries struct {
	Dir    string // folder holding all three, for PATH
	Daemon string
	CLI    string
	Remote string
	// FaultDaemon is annex-swarmd built with the faultinject tag: with
	// ANNEX_SWARM_FAULT=corrupt it serves corrupted chunks. Production
	// builds cannot do this.
	FaultDaemon string
}

// Build compiles the three programs into dir with `go build`. Call it once from
// TestMain; root is the module root.
func Build(root, dir string, race bool) (Binaries, error) {
	b := Binaries{
		Dir:    dir,
		Daemon: filepath.Join(dir, "annex-swarmd"),
		CLI:    filepath.Join(dir, "annex-swarm"),
		Remote: filepath.Join(dir, "git-annex-remote-swarm"),
	}
	args := []string{"build", "-o", dir + "/"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/annex-swarmd", "./cmd/annex-swarm", "./cmd/git-annex-remote-swarm")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build: %v\n%s", err, out)
	}
	b.FaultDaemon = filepath.Join(dir, "fault", "annex-swarmd")
	cmd = exec.Command("go", "build", "-tags", "faultinject", "-o", b.FaultDaemon, "./cmd/annex-swarmd")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return b, fmt.Errorf("go build -tags faultinject: %v\n%s", err, out)
	}
	return b, nil
}

// ModuleRoot finds the folder holding go.mod, from the working directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 20 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		dir = filepath.Dir(dir)
	}
	return "", errors.New("go.mod not found above the working directory")
}

// Node is one daemon process, its home, and the CLI pointed at it.
type Node struct {
	*localswarm.Node
	t   testing.TB
	bin Binaries
}

// Cluster is a set of nodes started together.
type Cluster struct {
	Nodes []*Node
	bin   Binaries
}

// Options shape the daemons of a cluster.
type Options struct {
	// Config, when not empty, is written to every home's config.toml.
	Config string
	// Args are extra annex-swarmd flags, e.g. --sync-interval 1s.
	Args []string
	// Env are extra environment variables for the daemons.
	Env []string
	// Fault runs the faultinject build of annex-swarmd.
	Fault bool
	// Home, when not empty, is the daemon's home (e.g. a file system the
	// test mounted); a fresh folder under t.TempDir() when empty.
	Home string
}

// New starts n daemons on loopback, each with a fresh home under t.TempDir(),
// and stops them when the test ends.
func New(t testing.TB, bin Binaries, n int, o Options) *Cluster {
	t.Helper()
	c := &Cluster{bin: bin}
	for i := range n {
		c.Nodes = append(c.Nodes, NewNode(t, bin, fmt.Sprintf("node%d", i), o))
	}
	return c
}

// Of makes a cluster of nodes started one by one (with different options).
func Of(bin Binaries, nodes ...*Node) *Cluster { return &Cluster{Nodes: nodes, bin: bin} }

// NewNode prepares and starts one daemon; it is stopped when the test ends.
func NewNode(t testing.TB, bin Binaries, name string, o Options) *Node {
	t.Helper()
	nd := PrepareNode(t, bin, name, o)
	if err := nd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	return nd
}

// PrepareNode is NewNode without the start: the home exists (with its
// config.toml) but no daemon runs yet, so a test can shape the home first
// (mount a small file system on its store, say) and then call Start. The
// daemon, once started, is stopped when the test ends.
func PrepareNode(t testing.TB, bin Binaries, name string, o Options) *Node {
	t.Helper()
	daemonBin := bin.Daemon
	if o.Fault {
		daemonBin = bin.FaultDaemon
	}
	home := o.Home
	if home == "" {
		home = filepath.Join(t.TempDir(), name)
	}
	ln, err := localswarm.NewNode(name, home, daemonBin, o.Config,
		append([]string{"--log-level", "debug"}, o.Args...)...)
	if err != nil {
		t.Fatal(err)
	}
	ln.Env = o.Env
	nd := &Node{Node: ln, t: t, bin: bin}
	t.Cleanup(func() { nd.Node.Stop() })
	return nd
}

// Start starts (or restarts) the daemon and waits until it answers.
func (n *Node) Start() error { return n.Node.Start(context.Background()) }

// Result is the outcome of one CLI run.
type Result struct {
	Stdout, Stderr string
	Code           int
	// TimedOut says the run was killed at its deadline.
	TimedOut bool
}

// CLI runs `annex-swarm --home HOME args...` with a deadline and returns its
// output and exit status.
func (n *Node) CLI(args ...string) Result {
	return RunCLI(n.bin, append([]string{"--home", n.Home}, args...)...)
}

// RunCLI runs the annex-swarm program with args (bounded to 10 minutes).
func RunCLI(bin Binaries, args ...string) Result { return RunCLIEnv(bin, nil, args...) }

// RunCLIEnv is RunCLI with extra environment variables (KEY=VALUE; a later
// one replaces an earlier one of the same name).
func RunCLIEnv(bin Binaries, env []string, args ...string) Result {
	return RunCLIWithin(bin, 10*time.Minute, env, args...)
}

// CLIWithin is CLI bounded by timeout: a run still going then is killed and
// its Result has TimedOut set.
func (n *Node) CLIWithin(timeout time.Duration, args ...string) Result {
	return RunCLIWithin(n.bin, timeout, nil, append([]string{"--home", n.Home}, args...)...)
}

// RunCLIWithin runs the annex-swarm program with args and extra environment
// variables (may be nil), killing it when it has not returned within timeout;
// such a run has TimedOut set and a non-zero Code.
func RunCLIWithin(bin Binaries, timeout time.Duration, env []string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.CLI, args...)
	cmd.WaitDelay = 5 * time.Second // after a kill at the deadline, do not wait on its pipes
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			code = -1
			errb.WriteString(err.Error())
		}
	}
	return Result{Stdout: out.String(), Stderr: errb.String(), Code: code, TimedOut: ctx.Err() != nil}
}

// MustCLI runs the CLI and fails the test on a non-zero exit.
func (n *Node) MustCLI(args ...string) string {
	n.t.Helper()
	r := n.CLI(args...)
	if r.Code != 0 {
		n.t.Fatalf("annex-swarm %v: exit %d\nstdout: %s\nstderr: %s\ndaemon log:\n%s", args, r.Code, r.Stdout, r.Stderr, n.LogTail(30))
	}
	return r.Stdout
}

// StatusJSON runs `status --json` and decodes it.
func (n *Node) StatusJSON() client.Status {
	n.t.Helper()
	var st client.Status
	if err := json.Unmarshal([]byte(n.MustCLI("status", "--json")), &st); err != nil {
		n.t.Fatalf("decoding status: %v", err)
	}
	return st
}

// LastLine returns the last non-empty line of s.
func LastLine(s string) string {
	ls := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.TrimSpace(ls[len(ls)-1])
}

// WaitFor polls cond until it is true, failing t when the timeout passes
// first: the one wait helper of the tests (swarmtest.WaitFor).
var WaitFor = swarmtest.WaitFor
