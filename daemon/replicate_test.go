package daemon

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// stopAll stops the daemons and waits for each Run to return.
func stopAll(t *testing.T, ds []*runningDaemon) {
	t.Helper()
	for i, d := range ds {
		d.stop()
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("daemon %d: Run: %v", i, err)
			}
		case <-time.After(90 * time.Second):
			t.Errorf("daemon %d did not stop", i)
		}
	}
}

// TestReplicationSkipsFullMember: a storage member at its limit (1 MiB in
// the definition) is not given a copy; the other members are, and the
// uploader's status says that no member has room for the last copy. In
// process (four daemons, real hosts on loopback, real stores); it was a
// multi-process test in test/.
func TestReplicationSkipsFullMember(t *testing.T) {
	ds := startDaemons(t, 4, 200*time.Millisecond)
	defer stopAll(t, ds)
	formSwarm(t, ds, rules.Replication{Copies: 4, CopiesMin: 2, RepairAfter: time.Hour},
		map[int]rules.Limits{3: {Storage: 1 << 20}})
	up, full := ds[0], ds[3]
	ctx := context.Background()

	data := make([]byte, 8<<20)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := up.cl.Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var w client.WhereResult
	swarmtest.WaitFor(t, time.Minute, "3 copies", func() bool {
		w, err = up.cl.Where(ctx, res.CID)
		return err == nil && w.Copies >= 3
	})
	if slices.ContainsFunc(w.Holders, func(h client.Holder) bool { return h.PeerID == full.id.PeerID }) {
		t.Fatalf("the member at its limit holds a copy: %+v", w)
	}
	swarmtest.WaitFor(t, 30*time.Second, "status says no member has room for the 4th copy", func() bool {
		st, err := up.cl.Status(ctx)
		if err != nil || st.Replication == nil {
			return false
		}
		r := st.Replication
		return r.NoRoom == 1 && r.BelowTarget == 1 && r.Problem != ""
	})
	st, err := full.cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Store.Used > st.Store.Limit {
		t.Fatalf("full member over its limit: %+v", st.Store)
	}
}
