package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// runningDaemon is one in-process daemon started by startDaemons.
type runningDaemon struct {
	home Home
	cl   *client.Client
	id   client.ID
	logs *lineLog
	stop context.CancelFunc
	done chan error // Run's result
}

// lineLog keeps the daemon's log lines.
type lineLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

// count returns the number of lines that contain s.
func (l *lineLog) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}

// find returns the first line that contains s, or "".
func (l *lineLog) find(s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// startDaemons runs n daemons in this process on loopback, each with its
// own home (and store) in a temporary folder, and waits for their control
// sockets.
func startDaemons(t *testing.T, n int, repair time.Duration) []*runningDaemon {
	t.Helper()
	out := make([]*runningDaemon, n)
	for i := range out {
		d := &runningDaemon{home: Home{Dir: t.TempDir()}, logs: &lineLog{}, done: make(chan error, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		d.stop = cancel
		log := slog.New(slog.NewTextHandler(d.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		go func() {
			d.done <- Run(ctx, Options{Home: d.home, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: log,
				SyncInterval: 200 * time.Millisecond, RepairInterval: repair})
		}()
		d.cl = client.New(d.home.Dir)
		swarmtest.WaitFor(t, 20*time.Second, "the control socket", func() bool {
			id, err := d.cl.ID(context.Background())
			d.id = id
			return err == nil
		})
		out[i] = d
	}
	return out
}

// formSwarm signs a definition listing every daemon as a storage member
// (with limits[i], if any) and has each join it.
func formSwarm(t *testing.T, ds []*runningDaemon, rep rules.Replication, limits map[int]rules.Limits) {
	t.Helper()
	armored, err := rules.GenerateKey("admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := rules.ReadSigner(bytes.NewReader(armored), nil)
	if err != nil {
		t.Fatal(err)
	}
	def, err := rules.Create("stoptest", admin, rep, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		p, err := peer.Decode(d.id.PeerID)
		if err != nil {
			t.Fatal(err)
		}
		m := rules.Member{Name: string(rune('a' + i)), Peer: rules.PeerID(p), Role: rules.RoleStorage, Limits: limits[i]}
		for _, a := range d.id.Addrs {
			addr, err := ma.NewMultiaddr(a)
			if err != nil {
				t.Fatal(err)
			}
			m.Addrs = append(m.Addrs, addr)
		}
		if err := def.AddMember(m); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := admin.Sign(def, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if _, err := d.cl.Join(context.Background(), signed); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range ds {
		swarmtest.WaitFor(t, 30*time.Second, "every member connected", func() bool {
			st, err := d.cl.Status(context.Background())
			if err != nil {
				return false
			}
			n := 0
			for _, m := range st.Members {
				if m.Connected {
					n++
				}
			}
			return n == len(ds)-1
		})
	}
}

// TestStopWithWorkInFlight stops daemons while placements (a put to three
// copies), repair rounds (every 50 ms) and announcements are in flight:
// each Run returns, nothing uses the store after it closed, and no
// goroutine is left behind.
func TestStopWithWorkInFlight(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// Process-wide workers libp2p and its dependencies start once and
		// keep (not owned by a daemon).
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc"),
	)
	ds := startDaemons(t, 3, 50*time.Millisecond)
	formSwarm(t, ds, rules.Replication{Copies: 3, CopiesMin: 1, RepairAfter: time.Second}, nil)

	src := t.TempDir()
	ctx := context.Background()
	for i := range 4 {
		data := make([]byte, 3<<20)
		if _, err := rand.Read(data); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(src, string(rune('a'+i)))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ds[0].cl.Put(ctx, client.PutRequest{Path: path}, nil); err != nil {
			t.Fatal(err)
		}
	}
	// The puts returned at copies_min = 1 (the uploader); the other two
	// copies are being placed. Stop a holder first, then the uploader and
	// the last one, without waiting for anything to settle.
	placed := ds[0].logs.count("copy placed")
	for _, i := range []int{1, 0, 2} {
		ds[i].stop()
		select {
		case err := <-ds[i].done:
			if err != nil {
				t.Errorf("daemon %d: Run: %v", i, err)
			}
		case <-time.After(90 * time.Second):
			t.Fatalf("daemon %d did not stop", i)
		}
	}
	// The stop must have caught placements in flight, else this test
	// shows nothing.
	if placed >= 8 {
		t.Errorf("all %d copies were placed before the stop", placed)
	}
	t.Logf("copies placed before the stop: %d of 8", placed)
	for i, d := range ds {
		for _, bad := range []string{"database not open", "closed store", "panic"} {
			if line := d.logs.find(bad); line != "" {
				t.Errorf("daemon %d used its store after closing it: %s", i, line)
			}
		}
	}
}
