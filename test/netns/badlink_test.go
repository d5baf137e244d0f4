package netns_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/test/harness"
	"github.com/annex-swarm/annex-swarm/test/netns"
)

// lanSwarm is n members, each in its own namespace, on one bridge
// (10.9.0.0/24, member i at 10.9.0.(10+i)), all listed with addresses.
type lanSwarm struct {
	lab   *netns.Lab
	nodes []*harness.Node
	swarm *harness.Swarm
}

func lanIP(i int) string { return fmt.Sprintf("10.9.0.%d", 10+i) }

// newLAN builds the namespaces and starts the daemons; shape runs on each
// member's namespace before its daemon starts (rates, loss).
func newLAN(t *testing.T, n int, shape func(l *netns.Lab, ns string), args ...string) *lanSwarm {
	l := netns.New(t)
	l.NS("lan")
	l.Bridge("lan", "br0", "")
	ls := &lanSwarm{lab: l}
	for i := range n {
		ns := "m" + strconv.Itoa(i)
		l.NS(ns)
		l.Plug(ns, "eth0", lanIP(i)+"/24", "lan", "br0")
		if shape != nil {
			shape(l, ns)
		}
		nd := (&natLab{lab: l}).node(t, ns, ns, args...)
		ls.nodes = append(ls.nodes, nd)
	}
	return ls
}

// form writes the definition (roles by index, storage when absent) and has
// everyone join.
func (ls *lanSwarm) form(t *testing.T, copies int, roles map[int]string) {
	c := harness.Of(bin, ls.nodes...)
	dir := t.TempDir()
	s := &harness.Swarm{Dir: dir, Key: filepath.Join(dir, "admin.key"), Rules: filepath.Join(dir, "swarm.rules")}
	c.MustRun(t, "key", "generate", "--name", "admin", "-o", s.Key)
	c.MustRun(t, "swarm", "create", "--name", "lan", "--key", s.Key,
		"--copies", strconv.Itoa(copies), "--copies-min", strconv.Itoa(copies), "-o", s.Rules)
	for i, nd := range ls.nodes {
		role := roles[i]
		if role == "" {
			role = "storage"
		}
		c.AddMember(t, s, nd, role, publicAddrs(lanIP(i))...)
	}
	for _, nd := range ls.nodes {
		nd.MustCLI("join", s.Rules)
	}
	ls.swarm = s
}

// TestBadLinks: every member's link is limited to 20 Mbit/s with 1 %
// random loss (the rate on the way out, the loss on the way in). A seeding
// to three storage members and a get from those three finish, byte for
// byte; the seeding's holders serve each other and the get takes bytes
// from every holder.
func TestBadLinks(t *testing.T) {
	ls := newLAN(t, 5, func(l *netns.Lab, ns string) {
		l.Rate(ns, "eth0", "20mbit")
		l.Loss(ns, "eth0", 1)
	})
	// m0 uploads, m1 gets; both clients. m2..m4 hold the copies.
	ls.form(t, 3, map[int]string{0: "client", 1: "client"})
	up, getter, holders := ls.nodes[0], ls.nodes[1], ls.nodes[2:]
	harness.WaitFor(t, 60*time.Second, "every member connected to every other", func() bool {
		for _, nd := range ls.nodes {
			if nd.StatusJSON().ConnectedPeers < len(ls.nodes)-1 {
				return false
			}
		}
		return true
	})

	const size = 12 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	f := filepath.Join(t.TempDir(), "in.bin")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	before := map[string]int64{}
	for _, h := range ls.nodes {
		before[h.Name] = h.StatusJSON().BytesSent
	}
	start := time.Now()
	cid := harness.LastLine(up.MustCLI("put", f)) // returns at copies_min = 3
	t.Logf("seeding %d MiB to 3 members over 20 Mbit/s, 1%% loss: %v", size>>20, time.Since(start).Round(time.Millisecond))

	// The get may use only holders it finds: wait for all three.
	harness.WaitFor(t, 60*time.Second, "three holders found by the getter", func() bool {
		var w struct {
			Copies int `json:"copies"`
		}
		r := getter.CLI("where", cid, "--json")
		return r.Code == 0 && json.Unmarshal([]byte(r.Stdout), &w) == nil && w.Copies == 3
	})
	// The seeding used every source: the uploader sent about one copy
	// (super-seeding), and every holder served the others part of theirs.
	upSent := up.StatusJSON().BytesSent - before[up.Name]
	t.Logf("seeding: %s sent %d bytes (%.2f x the file)", up.Name, upSent, float64(upSent)/size)
	if upSent > 2*size {
		t.Errorf("the uploader sent %.2f x the file for 3 copies; the holders did not seed each other", float64(upSent)/size)
	}
	for _, h := range holders {
		d := h.StatusJSON().BytesSent - before[h.Name]
		t.Logf("seeding: %s sent %d bytes", h.Name, d)
		if d == 0 {
			t.Errorf("seeding: holder %s served no other holder", h.Name)
		}
	}

	// The uploader is a client member: it keeps nothing once the put
	// ended (docs/STORE.md), so the holders are the sources.
	sources := holders
	sent := map[string]int64{}
	for _, h := range sources {
		sent[h.Name] = h.StatusJSON().BytesSent
	}
	out := filepath.Join(t.TempDir(), "out.bin")
	start = time.Now()
	getter.MustCLI("get", cid, "-o", out)
	t.Logf("get of %d MiB from 3 holders: %v", size>>20, time.Since(start).Round(time.Millisecond))
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the get returned other bytes")
	}
	// Every source serves part of the get: the fetcher's window opens
	// small (two requests, one more per chunk delivered), so a content of
	// few chunks is spread over every holder rather than taken by the first
	// that answered (docs/NETNS.md).
	for _, h := range sources {
		d := h.StatusJSON().BytesSent - sent[h.Name]
		t.Logf("%s sent %d bytes for the get", h.Name, d)
		if d == 0 {
			t.Errorf("the get took nothing from %s, a holder", h.Name)
		}
	}
}
