package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// TestSmallPutPlacesWhileStoring drives the small put (a content that
// travels inside the placement request, stored here while it is placed on
// the members) through the control API: a put returns with copies_min
// copies, one of them this member's own, and a member's copy reads back
// the same bytes; a put on a member whose own store is at its limit fails
// with the store's reason, promptly, rather than counting a copy it could
// not make.
func TestSmallPutPlacesWhileStoring(t *testing.T) {
	ds := startDaemons(t, 3, 200*time.Millisecond)
	defer stopAll(t, ds)
	formSwarm(t, ds, rules.Replication{Copies: 2, CopiesMin: 2, RepairAfter: time.Hour},
		map[int]rules.Limits{2: {Storage: 64 << 10}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	swarmtest.WaitFor(t, 30*time.Second, "the members connected", func() bool {
		st, err := ds[0].cl.Status(ctx)
		return err == nil && st.ConnectedPeers >= 2
	})

	data := make([]byte, 200<<10)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) > proto.MaxInlineSize {
		t.Fatal("the content would not travel inline")
	}
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := ds[0].cl.Put(ctx, client.PutRequest{Path: src, Key: "SHA256E-s204800--small"}, nil)
	if err != nil {
		t.Fatalf("small put: %v", err)
	}
	if res.Copies < 2 {
		t.Fatalf("put returned with %d copies, copies_min 2", res.Copies)
	}
	readsBack(t, ds[0], res.CID, data, "the uploader's copy")
	w, err := ds[0].cl.Where(ctx, res.CID)
	if err != nil {
		t.Fatal(err)
	}
	if w.Copies < 2 {
		t.Fatalf("where: %d copies after the put returned", w.Copies)
	}
	readsBack(t, ds[1], res.CID, data, "the member's copy")

	// The member at its limit cannot store its own copy: its put fails.
	other := make([]byte, 200<<10)
	if _, err := rand.Read(other); err != nil {
		t.Fatal(err)
	}
	src2 := filepath.Join(t.TempDir(), "src2")
	if err := os.WriteFile(src2, other, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = ds[2].cl.Put(ctx, client.PutRequest{Path: src2}, nil)
	if err == nil {
		t.Fatal("a put on a member whose store is at its limit succeeded")
	}
	if !strings.Contains(err.Error(), "storage limit") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("put on a member at its limit: %q, want one line naming the storage limit", err)
	}
}

// readsBack gets root through d (from its own store when it holds it) and
// checks the bytes against want.
func readsBack(t *testing.T, d *runningDaemon, root string, want []byte, what string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "back")
	if _, err := d.cl.Get(context.Background(), client.GetRequest{CID: root, Path: out}, nil); err != nil {
		t.Fatalf("reading %s: %v", what, err)
	}
	if b, err := os.ReadFile(out); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("%s differs (%v)", what, err)
	}
}
