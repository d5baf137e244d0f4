package activity

import (
	"sync"
	"testing"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

func TestTrackerPhases(t *testing.T) {
	var tr Tracker
	put := tr.Begin("put", "/a")
	get := tr.Begin("get", "/b")
	put.Update(client.Progress{Bytes: 5, Total: 10})
	if s := tr.Snapshot(); len(s) != 2 || s[0].Op != "put" || s[0].Phase != "storing" || s[0].Bytes != 5 || s[1].Op != "get" {
		t.Fatalf("snapshot = %+v", s)
	}
	src := map[string]int64{"peerA": 3}
	put.Update(client.Progress{Bytes: 3, Total: 10, Sources: src})
	src["peerA"] = 99 // the tracker keeps its own copy
	s := tr.Snapshot()
	if s[0].Phase != "seeding" || s[0].Sources["peerA"] != 3 {
		t.Fatalf("after seeding began: %+v", s[0])
	}
	if c := tr.Count(); c["put"] != 1 || c["get"] != 1 {
		t.Errorf("count = %v", c)
	}
	put.End()
	put.Update(client.Progress{Bytes: 10}) // after End: ignored
	get.End()
	if s := tr.Snapshot(); len(s) != 0 {
		t.Errorf("ended operations remain: %+v", s)
	}
}

func TestTrackerConcurrent(t *testing.T) {
	var tr Tracker
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				op := tr.Begin("get", "/x")
				op.Update(client.Progress{Bytes: int64(i)})
				_ = tr.Snapshot()
				op.End()
			}
		}()
	}
	wg.Wait()
	if n := len(tr.Snapshot()); n != 0 {
		t.Errorf("%d operations left", n)
	}
}
