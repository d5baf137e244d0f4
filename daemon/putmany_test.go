package daemon

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
)

// One PutMany stores and seeds many files; a file that cannot be read has
// its error and does not stop the others; each content reads back.
func TestPutMany(t *testing.T) {
	ds := startDaemons(t, 2, time.Second)
	t.Cleanup(func() {
		for _, d := range ds {
			d.stop()
			<-d.done
		}
	})
	formSwarm(t, ds, rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: time.Minute}, nil)
	src := t.TempDir()
	var req client.PutManyRequest
	for i := range 40 {
		path := filepath.Join(src, fmt.Sprint(i))
		if err := os.WriteFile(path, fmt.Appendf(nil, "small file %d", i), 0o600); err != nil {
			t.Fatal(err)
		}
		req.Files = append(req.Files, client.PutRequest{Path: path, Key: fmt.Sprint("K", i)})
	}
	missing := filepath.Join(src, "missing")
	req.Files = append(req.Files, client.PutRequest{Path: missing})
	ctx := context.Background()
	var last client.Progress
	res, err := ds[0].cl.PutMany(ctx, req, func(p client.Progress) { last = p })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Files) != len(req.Files) {
		t.Fatalf("%d results for %d files", len(res.Files), len(req.Files))
	}
	for i, f := range res.Files {
		switch {
		case f.Path != req.Files[i].Path:
			t.Fatalf("result %d is for %s, want %s", i, f.Path, req.Files[i].Path)
		case f.Path == missing:
			if f.Error == "" || f.CID != "" {
				t.Fatalf("a missing file put: %+v", f)
			}
		case f.Error != "" || f.CID == "" || f.Copies < 2:
			t.Fatalf("file %d: %+v", i, f)
		}
	}
	if last.FilesTotal != len(req.Files) || last.Files != len(req.Files) {
		t.Fatalf("last progress %+v", last)
	}
	out := filepath.Join(t.TempDir(), "out")
	if _, err := ds[1].cl.Get(ctx, client.GetRequest{CID: res.Files[7].CID, Path: out}, nil); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(out); err != nil || string(b) != "small file 7" {
		t.Fatalf("read back %q, %v", b, err)
	}
	tooMany := client.PutManyRequest{Files: make([]client.PutRequest, client.MaxPutMany+1)}
	if _, err := ds[0].cl.PutMany(ctx, tooMany, nil); err == nil {
		t.Fatal("a request over MaxPutMany was taken")
	}
}
