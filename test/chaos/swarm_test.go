package chaos

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// daemonArgs make members reconnect and compare rules every second and
// re-check their contents' copies every second, so repairs start soon after a
// fault (the rules' repair_after is set to repairAfter as well).
var daemonArgs = []string{"--sync-interval", "1s", "--repair-interval", "1s"}

// repairAfter is the swarm's repair_after: how long a missing copy is
// tolerated before the members place a new one.
const repairAfter = "3s"

const (
	storageMembers = 5
	// diskSize is the tmpfs under the small-disk member's store.
	diskSize = 256 << 20
	// diskSlack is what a fill leaves free on that disk.
	diskSlack = 1 << 20
)

// world is the running swarm: the storage members, the client member, the
// admin key and rules file, and the small disk of one member.
type world struct {
	t       *testing.T
	nodes   []*harness.Node // storage members first, the client last
	client  *harness.Node
	cluster *harness.Cluster
	swarm   *harness.Swarm
	// disk is the tmpfs mount under the small-disk member's store, or ""
	// when mounting was not permitted; ballast fills it.
	disk, ballast string
	diskNode      *harness.Node
	diskWhyNot    string
}

// newWorld starts the daemons (with smallDisk, one member's store on a
// small tmpfs when mount is permitted), forms the swarm with copies and copies_min, sets
// repair_after and waits until every member has the final rules and all are
// connected.
func newWorld(t *testing.T, copies, copiesMin int, smallDisk bool) *world {
	t.Helper()
	w := &world{t: t, diskWhyNot: "the small disk is not mounted with ANNEX_SWARM_CHAOS_FULL=0"}
	o := harness.Options{Args: daemonArgs}
	for i := range storageMembers {
		n := harness.PrepareNode(t, bin, fmt.Sprintf("s%d", i), o)
		if smallDisk && i == storageMembers-1 {
			w.mountDisk(n)
		}
		if err := n.Start(); err != nil {
			t.Fatalf("starting %s: %v", n.Name, err)
		}
		w.nodes = append(w.nodes, n)
	}
	w.client = harness.NewNode(t, bin, "laptop", o)
	w.nodes = append(w.nodes, w.client)
	w.cluster = harness.Of(bin, w.nodes...)
	w.swarm = w.cluster.FormSwarm(t, harness.SwarmOptions{
		Name: "chaos", Copies: copies, CopiesMin: copiesMin,
		Roles: map[int]string{storageMembers: "client"},
	})
	w.cluster.MustRun(t, "rules", "set", w.swarm.Rules, "--key", w.swarm.Key, "repair_after="+repairAfter)
	w.client.MustCLI("rules", "push", w.swarm.Rules)
	if err := w.waitConverged(90 * time.Second); err != nil {
		t.Fatalf("forming the swarm: %v", err)
	}
	return w
}

// mountDisk puts n's store on a tmpfs of diskSize: the mount is HOME/disk,
// the store is HOME/disk/store (HOME/store links there) and the ballast that
// fills the disk is HOME/disk/ballast, beside the store and not in it. When
// mount is not permitted the member keeps an ordinary store and the fill
// operation is skipped, with the reason logged.
func (w *world) mountDisk(n *harness.Node) {
	t := w.t
	mnt := filepath.Join(n.Home, "disk")
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", diskSize), "tmpfs", mnt).CombinedOutput()
	if err != nil {
		w.diskWhyNot = fmt.Sprintf("mount -t tmpfs refused (%v: %s): fill operations skipped", err, strings.TrimSpace(string(out)))
		t.Log(w.diskWhyNot)
		return
	}
	// Runs before the daemon's own cleanup (registered earlier): stop the
	// daemon so the mount is not busy, then unmount.
	t.Cleanup(func() {
		n.Kill()
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s; detaching it", mnt, err, out)
			_ = exec.Command("umount", "-l", mnt).Run()
		}
	})
	if err := os.MkdirAll(filepath.Join(mnt, "store"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(mnt, "store"), filepath.Join(n.Home, "store")); err != nil {
		t.Fatal(err)
	}
	w.disk, w.ballast, w.diskNode = mnt, filepath.Join(mnt, "ballast"), n
}

// diskFull reports whether the ballast is in place.
func (w *world) diskFull() bool {
	_, err := os.Stat(w.ballast)
	return w.disk != "" && err == nil
}

// fillDisk allocates a ballast file that leaves diskSlack free on the small
// disk. The member may be writing meanwhile (a long run fills the disk
// with content too): an allocation that finds less room than measured is
// tried again with what is left, a few times.
func (w *world) fillDisk() error {
	f, err := os.OpenFile(w.ballast, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("creating ballast: %w", err)
	}
	defer f.Close()
	for range 5 {
		var st syscall.Statfs_t
		if err := syscall.Statfs(w.disk, &st); err != nil {
			return fmt.Errorf("statfs %s: %w", w.disk, err)
		}
		size := int64(st.Bavail)*st.Bsize - diskSlack
		if size <= 0 {
			return nil // full already
		}
		err := syscall.Fallocate(int(f.Fd()), 0, 0, size)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.ENOSPC) {
			return fmt.Errorf("allocating %d bytes of ballast: %w", size, err)
		}
	}
	return nil // the member filled it meanwhile: full enough
}

// freeDisk removes the ballast.
func (w *world) freeDisk() error {
	if err := os.Remove(w.ballast); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("removing ballast: %w", err)
	}
	return nil
}

// status is the part of `status --json` the suite reads.
type status struct {
	PeerID string `json:"peer_id"`
	Swarm  *struct {
		Version uint64 `json:"version"`
	} `json:"swarm"`
	Members []struct {
		PeerID    string `json:"peer_id"`
		Connected bool   `json:"connected"`
	} `json:"members"`
}

func (w *world) status(n *harness.Node) (status, error) {
	var st status
	r := n.CLIWithin(15*time.Second, "status", "--json")
	if r.Code != 0 {
		return st, fmt.Errorf("status on %s: exit %d: %s", n.Name, r.Code, strings.TrimSpace(r.Stderr))
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		return st, fmt.Errorf("decoding status of %s: %w", n.Name, err)
	}
	return st, nil
}

// waitConverged waits until every running daemon has the same rules version
// and is connected to every other running daemon.
func (w *world) waitConverged(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	start, lastWhy := time.Now(), ""
	for {
		why := w.notConverged()
		if why == "" {
			w.t.Logf("converged in %v", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if why != lastWhy {
			w.t.Logf("%v: not converged: %s", time.Since(start).Round(time.Millisecond), why)
			lastWhy = why
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not converged after %v: %s", timeout, why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (w *world) notConverged() string {
	var version uint64
	for _, a := range w.nodes {
		if !a.Running() {
			continue
		}
		st, err := w.status(a)
		if err != nil {
			return err.Error()
		}
		if st.Swarm == nil {
			return a.Name + " has no swarm"
		}
		if version == 0 {
			version = st.Swarm.Version
		} else if st.Swarm.Version != version {
			return fmt.Sprintf("%s has rules version %d, another %d", a.Name, st.Swarm.Version, version)
		}
		conn := map[string]bool{}
		for _, m := range st.Members {
			conn[m.PeerID] = m.Connected
		}
		for _, b := range w.nodes {
			if b != a && b.Running() && !conn[b.PeerID] {
				return fmt.Sprintf("%s is not connected to %s", a.Name, b.Name)
			}
		}
	}
	return ""
}

// running returns the running daemons; storageOnly leaves the client out.
func (w *world) running(storageOnly bool) []*harness.Node {
	var out []*harness.Node
	for _, n := range w.nodes {
		if n.Running() && (!storageOnly || n != w.client) {
			out = append(out, n)
		}
	}
	return out
}

// killed returns the daemons that are down.
func (w *world) killed() []*harness.Node {
	var out []*harness.Node
	for _, n := range w.nodes {
		if !n.Running() {
			out = append(out, n)
		}
	}
	return out
}
