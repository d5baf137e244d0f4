package daemon

import (
	"context"
	"crypto/rand"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/membership/dhtstore"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// A daemon keeps its DHT's provider records in HOME/dht.db: after a put
// has been copied to the other member and both daemons have stopped, each
// home's file holds the swarm's provider records (each member stores its
// own announcement locally and the other's).
func TestProviderRecordsInHome(t *testing.T) {
	ds := startDaemons(t, 2, time.Hour)
	stopped := false
	defer func() {
		if !stopped {
			stopAll(t, ds)
		}
	}()
	formSwarm(t, ds, rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: time.Hour}, nil)
	ctx := context.Background()
	src := filepath.Join(t.TempDir(), "src")
	data := make([]byte, 64<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := ds[0].cl.Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatal(err)
	}
	swarmtest.WaitFor(t, time.Minute, "2 copies", func() bool {
		w, err := ds[0].cl.Where(ctx, res.CID)
		return err == nil && w.Copies >= 2
	})
	st, err := ds[0].cl.Status(ctx)
	if err != nil || st.Swarm == nil {
		t.Fatalf("status: %+v, %v", st, err)
	}
	stopAll(t, ds)
	stopped = true
	total := 0
	for i, d := range ds {
		db, err := dhtstore.Open(d.home.DHTRecordsPath(), slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Count(st.Swarm.ID)
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatalf("daemon %d: %v", i, err)
		}
		t.Logf("daemon %d: %d provider records in HOME/dht.db", i, n)
		total += n
	}
	if total == 0 {
		t.Fatal("no provider record in either daemon's HOME/dht.db")
	}
}
