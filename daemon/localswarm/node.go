// Package localswarm runs annex-swarmd processes on this machine, each with its
// own home and listening on loopback only. The demo and the end-to-end test
// harness both use it.
package localswarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/internal/home"
)

// StartTimeout bounds how long a daemon may take to answer on its socket.
const StartTimeout = 30 * time.Second

// StopTimeout bounds how long a daemon may take to stop after SIGTERM.
const StopTimeout = 40 * time.Second

// LoopbackListen are the listen flags every local daemon gets.
var LoopbackListen = []string{"--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/udp/0/quic-v1"}

// Node is one daemon process and its home.
type Node struct {
	Name   string
	Home   string
	Daemon string   // path of the annex-swarmd binary
	Args   []string // extra annex-swarmd flags
	Env    []string // extra environment variables, KEY=VALUE

	// PeerID and Addrs are known once Start has returned.
	PeerID string
	Addrs  []string

	cmd     *exec.Cmd
	logFile *os.File
	exited  chan struct{}
}

// NewNode prepares a node with home dir (created 0700) and, when config is
// not empty, that config.toml.
func NewNode(name, dir, daemonBin, config string, args ...string) (*Node, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating home %s: %w", dir, err)
	}
	if config != "" {
		if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600); err != nil {
			return nil, fmt.Errorf("writing config of %s: %w", name, err)
		}
	}
	return &Node{Name: name, Home: dir, Daemon: daemonBin, Args: args}, nil
}

// Start runs the daemon (its log goes to HOME/daemon.log) and waits until its
// control API answers.
func (n *Node) Start(ctx context.Context) error {
	lf, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("opening log of %s: %w", n.Name, err)
	}
	args := append(append([]string{"--home", n.Home}, LoopbackListen...), n.Args...)
	cmd := exec.Command(n.Daemon, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if len(n.Env) > 0 {
		cmd.Env = append(os.Environ(), n.Env...)
	}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return fmt.Errorf("starting %s: %w", n.Name, err)
	}
	exited := make(chan struct{})
	n.cmd, n.logFile, n.exited = cmd, lf, exited
	go func() { cmd.Wait(); close(exited) }() // this start's channel, not a later start's

	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	cl := n.Client()
	for {
		id, err := cl.ID(ctx)
		if err == nil {
			n.PeerID, n.Addrs = id.PeerID, id.Addrs
			return nil
		}
		select {
		case <-n.exited:
			return fmt.Errorf("%s exited at start: %s", n.Name, n.LogTail(5))
		case <-ctx.Done():
			return fmt.Errorf("%s did not answer within %v: %w", n.Name, StartTimeout, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Running reports whether the process is alive.
func (n *Node) Running() bool {
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// Pid is the process ID, or 0 when not running.
func (n *Node) Pid() int {
	if !n.Running() {
		return 0
	}
	return n.cmd.Process.Pid
}

// Stop sends SIGTERM and waits for a clean exit, killing the process after
// StopTimeout. It returns an error when the exit was not clean.
func (n *Node) Stop() error {
	if !n.Running() {
		return nil
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(StopTimeout):
		n.Kill()
		return fmt.Errorf("%s did not stop within %v of SIGTERM; killed", n.Name, StopTimeout)
	}
	n.logFile.Close()
	if !n.cmd.ProcessState.Success() {
		return fmt.Errorf("%s exited with %v", n.Name, n.cmd.ProcessState)
	}
	return nil
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (n *Node) Kill() {
	if !n.Running() {
		return
	}
	_ = n.cmd.Process.Kill()
	<-n.exited
	n.logFile.Close()
}

// LogPath is the daemon's log file.
func (n *Node) LogPath() string { return home.Home{Dir: n.Home}.LogPath() }

// LogTail returns the last lines of the daemon's log.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// Client returns a control API client for this node.
func (n *Node) Client() *client.Client { return client.New(n.Home) }

// FindBinary looks for name next to the running program, then on PATH.
func FindBinary(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", errors.New(name + " not found next to this program nor on PATH (build it with: go build -o bin/ ./cmd/...)")
	}
	return p, nil
}
