package test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// BenchmarkSmallRequests takes a small request of git-annex's apart
// (issue 11 "Per request", docs/PERFORMANCE.md "Where a small request's
// milliseconds go"). Against the swarm of BenchmarkGitAnnexTestremote (3
// storage members, copies 2, copies_min 2, the repository's daemon a storage
// member) and, in the same run, a one-member swarm (copies 1: the local
// store alone), each iteration times, for a new 4 KiB file:
//
//   - the control API alone (status);
//   - the daemon's part of STORE (put), CHECKPRESENT (where), REMOVE
//     (remove) and a STORE of a removed content (put again: the restore);
//   - the same requests through a running git-annex-remote-swarm, this
//     benchmark playing git-annex's side of the protocol (the remote's own
//     part is the difference).
//
// It reports the median of each in ms. The remote's start-up is
// BenchmarkRemoteStartup.
//
//	go test ./test -run '^$' -bench SmallRequests -benchtime 100x -v
func BenchmarkSmallRequests(b *testing.B) {
	swarm := harness.New(b, bin, 3, fastSync)
	swarm.FormSwarm(b, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	single := harness.New(b, bin, 1, fastSync)
	single.FormSwarm(b, harness.SwarmOptions{Copies: 1, CopiesMin: 1})
	harness.WaitFor(b, time.Minute, "the members connected", func() bool {
		return connectedTo(swarm.Nodes[0], swarm.Nodes[1].PeerID) && connectedTo(swarm.Nodes[0], swarm.Nodes[2].PeerID)
	})
	rp := startRemote(b, swarm.Nodes[0].Home)
	defer rp.close()
	dir := b.TempDir()
	times := map[string][]time.Duration{}
	timeIt := func(name string, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		times[name] = append(times[name], time.Since(start))
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		for _, v := range []struct {
			name string
			n    *harness.Node
		}{{"swarm", swarm.Nodes[0]}, {"local", single.Nodes[0]}} {
			c := v.n.Client()
			path := filepath.Join(dir, fmt.Sprintf("%s-%d", v.name, i))
			writeRandomFile(b, path, 4<<10, uint64(7000+i))
			if v.name == "local" {
				writeRandomFile(b, path, 4<<10, uint64(9000+i))
			}
			var root string
			timeIt(v.name+"/status", func() error { _, err := c.Status(ctx); return err })
			put := func() error {
				r, err := c.Put(ctx, client.PutRequest{Path: path}, nil)
				root = r.CID
				return err
			}
			timeIt(v.name+"/put", put)
			timeIt(v.name+"/where", func() error { _, err := c.Where(ctx, root); return err })
			timeIt(v.name+"/remove", func() error { _, err := c.Remove(ctx, root); return err })
			timeIt(v.name+"/put-again", put)
			if _, err := c.Remove(ctx, root); err != nil {
				b.Fatal(err)
			}
		}
		// The same requests through the remote.
		path := filepath.Join(dir, fmt.Sprintf("remote-%d", i))
		sum := writeRandomFile(b, path, 4<<10, uint64(8000+i))
		key := fmt.Sprintf("SHA256E-s%d--%s.bin", 4<<10, hex.EncodeToString(sum[:]))
		timeIt("remote/STORE", func() error { return rp.request("TRANSFER STORE "+key+" "+path, "TRANSFER-SUCCESS") })
		timeIt("remote/CHECKPRESENT", func() error { return rp.request("CHECKPRESENT "+key, "CHECKPRESENT-SUCCESS") })
		timeIt("remote/REMOVE", func() error { return rp.request("REMOVE "+key, "REMOVE-SUCCESS") })
		timeIt("remote/STORE-again", func() error { return rp.request("TRANSFER STORE "+key+" "+path, "TRANSFER-SUCCESS") })
		if err := rp.request("REMOVE "+key, "REMOVE-SUCCESS"); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	names := make([]string, 0, len(times))
	for k := range times {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		v := times[k]
		slices.Sort(v)
		med := float64(v[len(v)/2].Microseconds()) / 1000
		b.ReportMetric(med, strings.ReplaceAll(k, "/", "_")+"_ms")
		b.Logf("%-22s median %6.2f ms  p90 %6.2f ms  (%d)", k, med, float64(v[len(v)*9/10].Microseconds())/1000, len(v))
	}
}

// remoteProc is a running git-annex-remote-swarm with this benchmark as
// its git-annex: it keeps the keys' state (SETSTATE/GETSTATE).
type remoteProc struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	state map[string]string
	asked int // GETSTATE questions answered
}

// startRemote starts the remote on the daemon in home and prepares it
// (no ASYNC: requests are answered in order).
func startRemote(b testing.TB, home string) *remoteProc {
	b.Helper()
	cmd := exec.Command(bin.Remote)
	cmd.Env = append(os.Environ(), "ANNEX_SWARM_HOME="+home)
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &remoteProc{cmd: cmd, in: in, lines: make(chan string, 16), state: map[string]string{}}
	go func() {
		defer close(p.lines)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
	}()
	if l, err := p.next(); err != nil || !strings.HasPrefix(l, "VERSION ") {
		b.Fatalf("first line %q: %v", l, err)
	}
	if err := p.request("EXTENSIONS INFO", "EXTENSIONS"); err != nil {
		b.Fatal(err)
	}
	if err := p.request("PREPARE", "PREPARE-SUCCESS"); err != nil {
		b.Fatal(err)
	}
	return p
}

// next is the remote's next line, waited for at most a minute.
func (p *remoteProc) next() (string, error) {
	select {
	case l, ok := <-p.lines:
		if !ok {
			return "", io.ErrUnexpectedEOF
		}
		return l, nil
	case <-time.After(time.Minute):
		return "", fmt.Errorf("no answer from the remote in a minute")
	}
}

// request sends line and answers the remote's questions until a line
// starting with want; any other final answer is an error.
func (p *remoteProc) request(line, want string) error {
	if _, err := io.WriteString(p.in, line+"\n"); err != nil {
		return err
	}
	for {
		l, err := p.next()
		if err != nil {
			return err
		}
		f := strings.SplitN(l, " ", 3)
		switch f[0] {
		case "GETSTATE":
			p.asked++
			if _, err := io.WriteString(p.in, "VALUE "+p.state[f[1]]+"\n"); err != nil {
				return err
			}
		case "SETSTATE":
			if len(f) == 3 {
				p.state[f[1]] = f[2]
			} else {
				delete(p.state, f[1])
			}
		case "GETCONFIG", "GETGITDIR", "GETGITREMOTENAME":
			if _, err := io.WriteString(p.in, "VALUE \n"); err != nil {
				return err
			}
		case "PROGRESS", "DEBUG":
		default:
			if f[0] == want {
				return nil
			}
			return fmt.Errorf("%s: the remote answered %q", line, l)
		}
	}
}

func (p *remoteProc) close() {
	p.in.Close()
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}
