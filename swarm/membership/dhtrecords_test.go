package membership_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/annex-swarm/annex-swarm/swarm/membership"
	"github.com/annex-swarm/annex-swarm/swarm/membership/dhtstore"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// A member with a DHTRecords file keeps the provider records other members
// announce to it in that file, not in memory: member B announces n roots,
// member A finds B as their holder, and once A has stopped its file holds
// the n records in the swarm's bucket.
func TestProviderRecordsInFile(t *testing.T) {
	const n = 300 // more than kad-dht's 256-record write buffer
	hs := swarmtest.Hosts(t, 2)
	signed := signedDefinition(t, "records", hs, true)
	path := filepath.Join(t.TempDir(), "dht.db")
	quiet := slog.New(slog.DiscardHandler)
	a := membership.New(hs[0].Host, hs[0].Gater, membership.Options{Logger: quiet, DHTRecords: path})
	b := membership.New(hs[1].Host, hs[1].Gater, membership.Options{Logger: quiet})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, m := range []*membership.Membership{a, b} {
		if _, err := m.Join(ctx, signed); err != nil {
			t.Fatal(err)
		}
	}
	aCtx, stopA := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { a.Run(aCtx) })
	wg.Go(func() { b.Run(ctx) })
	swarmtest.WaitFor(t, 20*time.Second, "the members in each other's DHT", func() bool {
		return a.DHT() != nil && b.DHT() != nil && a.DHT().RoutingTable().Size() > 0 && b.DHT().RoutingTable().Size() > 0
	})

	roots := make([]cid.Cid, n)
	for i := range roots {
		mh, err := multihash.Sum(swarmtest.RandomContent(t, 64), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		roots[i] = cid.NewCidV1(cid.Raw, mh)
	}
	var provided sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan cid.Cid)
	for range 8 {
		provided.Go(func() {
			for c := range work {
				errs <- b.Routing().Provide(ctx, c, true)
			}
		})
	}
	for _, c := range roots {
		work <- c
	}
	close(work)
	provided.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("announcing from B: %v", err)
		}
	}

	// An ADD_PROVIDER is sent without an answer: wait until A has
	// stored every record.
	swarmtest.WaitFor(t, 30*time.Second, "B's records stored on A", func() bool {
		for _, c := range roots {
			ps, err := a.DHT().ProviderStore().GetProviders(ctx, c.Hash())
			if err != nil || len(ps) != 1 || ps[0].ID != hs[1].Host.ID() {
				return false
			}
		}
		return true
	})
	for _, c := range []cid.Cid{roots[0], roots[n/2], roots[n-1]} {
		found := false
		for ai := range a.Routing().FindProvidersAsync(ctx, c, 1) {
			found = found || ai.ID == hs[1].Host.ID()
		}
		if !found {
			t.Fatalf("A did not find B as the holder of %s", c)
		}
	}

	id := a.Current().ID.String()
	stopA()
	swarmtest.WaitFor(t, 20*time.Second, "A's DHT stopped", func() bool { return a.DHT() == nil })
	// Run closes the file after the DHT; reopening waits for that.
	var db *dhtstore.DB
	swarmtest.WaitFor(t, 20*time.Second, "A's record file closed", func() bool {
		var err error
		db, err = dhtstore.Open(path, quiet)
		return err == nil
	})
	defer db.Close()
	got, err := db.Count(id)
	if err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("A's file holds %d provider records of swarm %s, want %d", got, id, n)
	}
}
