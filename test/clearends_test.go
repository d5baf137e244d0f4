package test

// Clear ends (issue 10, item 4): every command ends with words that are true.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestFsckIncompleteExitsNonZero: once a corrupt chunk is quarantined, fsck
// reports "1 contents incomplete" and must still exit non-zero.
func TestFsckIncompleteExitsNonZero(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	src := filepath.Join(t.TempDir(), "f")
	writeRandomFile(t, src, 3<<20, 5)
	n.MustCLI("put", src)
	flipOneChunk(t, n)
	if r := n.CLI("fsck"); r.Code == 0 || !strings.Contains(r.Stdout, "1 corrupt") {
		t.Fatalf("fsck of a corrupt store: exit %d\n%s", r.Code, r.Stdout)
	}
	r := n.CLI("fsck")
	if !strings.Contains(r.Stdout, "0 corrupt") || !strings.Contains(r.Stdout, "1 contents incomplete") {
		t.Fatalf("second fsck did not report the incomplete content:\n%s", r.Stdout)
	}
	if r.Code != 1 || !strings.Contains(r.Stderr, "contents incomplete") || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Fatalf("fsck reporting an incomplete content: exit %d, stderr %q", r.Code, r.Stderr)
	}
}

// flipOneChunk flips a byte of the largest chunk file of n's store (a data
// chunk, not a manifest) behind the daemon's back.
func flipOneChunk(t *testing.T, n *harness.Node) {
	t.Helper()
	var victim string
	var size int64
	filepath.WalkDir(filepath.Join(n.Home, "store", "chunks"), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() > size {
			victim, size = p, fi.Size()
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no chunk file found under the store")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRmSaysWhatItRemoved: rm of a CID no member holds says so (exit 0); rm
// of a held one names how many members held it.
func TestRmSaysWhatItRemoved(t *testing.T) {
	c := harness.New(t, bin, 2, harness.Options{})
	c.FormSwarm(t, harness.SwarmOptions{Copies: 2, CopiesMin: 2})
	dir := t.TempDir()
	// A real content CID that this swarm never saw: stored by a daemon
	// outside it.
	outsider := harness.NewNode(t, bin, "outsider", harness.Options{})
	src := filepath.Join(dir, "elsewhere")
	writeRandomFile(t, src, 100<<10, 6)
	unknown := harness.LastLine(outsider.MustCLI("put", src))
	r := c.Nodes[0].CLI("rm", unknown)
	if r.Code != 0 || !strings.Contains(r.Stdout, unknown+" is unknown to the swarm: no member holds a copy") {
		t.Fatalf("rm of an unknown CID: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	src = filepath.Join(dir, "held")
	writeRandomFile(t, src, 100<<10, 7)
	held := harness.LastLine(c.Nodes[0].MustCLI("put", src))
	if out := c.Nodes[0].MustCLI("rm", held); !strings.Contains(out, "removed "+held+" from 2 members") {
		t.Fatalf("rm of a content held by both members: %s", out)
	}
	// The git-annex remote's REMOVE asks for no survey: nothing counted,
	// the content still gone from every member when the answer comes.
	src = filepath.Join(dir, "quiet")
	writeRandomFile(t, src, 100<<10, 8)
	quiet := harness.LastLine(c.Nodes[0].MustCLI("put", src))
	ctx := context.Background()
	res, err := c.Nodes[0].Client().RemoveWith(ctx, client.RemoveRequest{CID: quiet, NoSurvey: true})
	if err != nil || res.Surveyed || res.Holders != 0 {
		t.Fatalf("rm without a survey: %+v, %v", res, err)
	}
	for i, n := range c.Nodes {
		if w, err := n.Client().Where(ctx, quiet); err != nil || w.Copies != 0 {
			t.Fatalf("member %d's where after the rm without a survey: %+v, %v", i, w, err)
		}
	}
}

// TestGetForce: get -o onto an existing file refuses and leaves it alone;
// with --force it replaces it.
func TestGetForce(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	want := writeRandomFile(t, src, 200<<10, 8)
	root := harness.LastLine(n.MustCLI("put", src))
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := n.CLI("get", root, "-o", out)
	if r.Code != 1 || !strings.Contains(r.Stderr, "already exists") {
		t.Fatalf("get onto an existing file: exit %d, stderr %q", r.Code, r.Stderr)
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("the refused get changed the file to %d bytes", len(b))
	}
	n.MustCLI("get", root, "-o", out, "--force")
	if got := fileSHA256(t, out); got != want {
		t.Fatal("get --force wrote other bytes")
	}
}

// TestCLISaysDaemonStopped: a daemon killed while it answers a put makes the
// CLI say that the daemon stopped and where its log is. The put reads a FIFO
// nobody writes, so it cannot end by itself.
func TestCLISaysDaemonStopped(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	fifo := filepath.Join(t.TempDir(), "never-written")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin.CLI, "--home", n.Home, "put", fifo)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	harness.WaitFor(t, 30*time.Second, "the daemon to open the FIFO for the put", func() bool { return openingFIFO(t, n.Pid()) })
	n.Kill()
	err := cmd.Wait()
	if ctx.Err() != nil {
		t.Fatal("the CLI did not end after its daemon was killed")
	}
	if err == nil {
		t.Fatalf("put exited 0 after its daemon was killed: %s", stdout.String())
	}
	msg := strings.TrimSpace(stderr.String())
	if !strings.Contains(msg, "annex-swarmd stopped") || !strings.Contains(msg, "its log: "+n.LogPath()) || strings.Contains(msg, "\n") {
		t.Fatalf("stderr = %q, want one line saying the daemon stopped and naming %s", msg, n.LogPath())
	}
}

// openingFIFO reports whether a thread of process pid is blocked opening a
// FIFO (the kernel's wait_for_partner).
func openingFIFO(t *testing.T, pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/wchan", pid))
	if err != nil || len(tasks) == 0 {
		t.Skipf("no /proc/%d/task: %v", pid, err)
	}
	for _, p := range tasks {
		if b, err := os.ReadFile(p); err == nil && string(b) == "wait_for_partner" {
			return true
		}
	}
	return false
}
