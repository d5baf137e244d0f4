// Package rclone is a chunk.Backend that keeps a store's objects in an
// rclone remote (docs/CLOUD.md): any cloud account rclone supports becomes
// a swarm member's disk.
//
// It drives rclone through its remote-control API: `rclone rcd` runs as a
// supervised child process on loopback, on a random port, with a user and
// password drawn at random on every start, restarted with backoff if it
// dies and stopped with Close. Objects are written with
// operations/uploadfile, read through the rcd's --rc-serve file serving,
// listed with operations/list, deleted with operations/deletefile and
// quarantined with operations/movefile; operations/about gives the quota.
// rclone's Go packages are not imported: their API is not kept stable.
package rclone

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// This file runs and supervises `rclone rcd`.

// startTimeout bounds the wait for a starting rcd to say where it listens.
const startTimeout = 20 * time.Second

// Restart backoff after the rcd died: from restartMin, doubling, at most
// restartMax.
const (
	restartMin = 500 * time.Millisecond
	restartMax = 30 * time.Second
)

// servingLine is how rcd 1.60 announces its address on stderr.
var servingLine = regexp.MustCompile(`Serving remote control on (http://127\.0\.0\.1:[0-9]+)/`)

// maxLogLine bounds one line of rcd's log that is read.
const maxLogLine = 64 << 10

// endpoint is where a running rcd answers and how to log in.
type endpoint struct {
	base, user, pass string
}

// rcd supervises one `rclone rcd` process.
type rcd struct {
	bin    string
	config string
	log    *slog.Logger

	mu      sync.Mutex
	ep      endpoint // empty while no rcd runs
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	closing bool
	done    chan struct{} // closed by close; stops the supervisor
	stopped chan struct{} // closed when the supervisor returned
}

// startRcd starts rcd and its supervisor.
func startRcd(bin, config string, log *slog.Logger) (*rcd, error) {
	if bin == "" {
		bin = "rclone"
	}
	path, err := exec.LookPath(bin)
	if err != nil {
		return nil, fmt.Errorf("starting rclone: %w (install rclone: apt-get install rclone)", err)
	}
	r := &rcd{bin: path, config: config, log: log, done: make(chan struct{}), stopped: make(chan struct{})}
	if err := r.start(); err != nil {
		return nil, err
	}
	go r.supervise()
	return r, nil
}

func randomToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// start runs one rcd and waits until it listens.
func (r *rcd) start() error {
	user, pass := randomToken(), randomToken()
	args := []string{"rcd", "--rc-addr", "127.0.0.1:0", "--rc-user", user, "--rc-pass", pass,
		"--rc-serve", "--log-level", "NOTICE",
		// Fail an operation on a dead account in seconds, not minutes:
		// the backend retries on its own (client.go), and knows when to
		// give up.
		"--contimeout", "10s", "--timeout", "30s", "--low-level-retries", "3"}
	if r.config != "" {
		args = append(args, "--config", r.config)
	}
	cmd := exec.Command(r.bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("starting rclone rcd: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting rclone rcd: %w", err)
	}
	found := make(chan string, 1)
	go r.readLog(stderr, found)
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case base := <-found:
		r.mu.Lock()
		r.ep, r.cmd, r.exited = endpoint{base, user, pass}, cmd, exited
		r.mu.Unlock()
		r.log.Info("rclone rcd started", "addr", base, "pid", cmd.Process.Pid)
		return nil
	case <-exited:
		return fmt.Errorf("starting rclone rcd: exited before listening: %v", cmd.ProcessState)
	case <-timer.C:
		cmd.Process.Kill()
		<-exited
		return fmt.Errorf("starting rclone rcd: not listening after %v", startTimeout)
	}
}

// readLog passes rcd's log to the logger and reports the address it
// serves on once.
func (r *rcd) readLog(stderr io.Reader, found chan<- string) {
	sc := bufio.NewScanner(stderr)
	sc.Buffer(make([]byte, 4096), maxLogLine)
	sent := false
	for sc.Scan() {
		line := sc.Text()
		if m := servingLine.FindStringSubmatch(line); m != nil && !sent {
			found <- m[1]
			sent = true
			continue
		}
		r.log.Info("rclone", "line", line)
	}
	io.Copy(io.Discard, stderr) // a line over the bound: keep the pipe drained
}

// supervise restarts rcd whenever it exits until close.
func (r *rcd) supervise() {
	defer close(r.stopped)
	for {
		r.mu.Lock()
		exited := r.exited
		r.mu.Unlock()
		select {
		case <-r.done:
			return
		case <-exited:
		}
		r.mu.Lock()
		r.ep = endpoint{}
		r.mu.Unlock()
		r.log.Warn("rclone rcd exited, restarting")
		wait := restartMin
		for {
			select {
			case <-r.done:
				return
			case <-time.After(wait):
			}
			err := r.start()
			if err == nil {
				break
			}
			r.log.Error("restarting rclone rcd", "err", err, "retry_in", wait)
			wait = min(2*wait, restartMax)
		}
	}
}

// endpoint returns where the running rcd answers, or an error while none
// runs.
func (r *rcd) endpoint() (endpoint, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ep.base == "" {
		return endpoint{}, errors.New("rclone rcd not running (restarting)")
	}
	return r.ep, nil
}

// kill kills the running rcd (tests: a crash); the supervisor restarts it.
func (r *rcd) kill() {
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
	}
}

// close stops the supervisor and the rcd.
func (r *rcd) close() {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return
	}
	r.closing = true
	close(r.done)
	r.mu.Unlock()
	<-r.stopped
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.mu.Unlock()
	if cmd != nil {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
}

// pid is the process ID of the running rcd, 0 if none.
func (r *rcd) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil || r.ep.base == "" {
		return 0
	}
	return r.cmd.Process.Pid
}
