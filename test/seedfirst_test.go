package test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestReplicationCopiesMinFirst (docs/REPLICATION.md "copies_min first"):
// a client member puts a file in a swarm of 3 storage members with
// copies=3, copies_min=1, every storage member's upload capped at 1 MiB/s
// and the client's not. The first holder is fed by the client at full
// speed and put returns when it is complete, while the two followers are
// still fetching from it (at the capped rate): the storage members have
// received less than two files' worth between them. With super-seeding
// among all three, the first copy completes only once all three are
// nearly complete (close to three files received). Then the followers
// complete from the first holder, and the client has sent about one copy.
func TestReplicationCopiesMinFirst(t *testing.T) {
	capped := "[limits]\nupload = \"1MiB/s\"\n"
	rs := formRepl(t, 3, true, harness.SwarmOptions{Copies: 3, CopiesMin: 1}, "1h", map[int]string{0: capped, 1: capped, 2: capped})
	laptop := rs.client
	storage := rs.c.Nodes[:3]
	src := filepath.Join(t.TempDir(), "src")
	const size = 24 << 20
	writeRandomFile(t, src, size, 61)

	received := func() int64 {
		var n int64
		for _, s := range storage {
			n += s.StatusJSON().BytesReceived
		}
		return n
	}
	sent0, recv0 := laptop.StatusJSON().BytesSent, received()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := laptop.Client().Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("put: %v\n%s", err, laptop.LogTail(40))
	}
	took := time.Since(start)
	got := received() - recv0
	w := where(t, laptop, res.CID)
	if res.Copies < 1 || w.Copies < 1 {
		t.Fatalf("put returned with %d copies (where: %+v), copies_min is 1", res.Copies, w)
	}
	t.Logf("put returned after %v with %d copies; storage members had received %.2f × the file", took.Round(time.Millisecond), w.Copies, float64(got)/size)
	if got >= 2*size {
		t.Errorf("when put returned the storage members had received %d bytes (%.2f × the file): the followers did not wait for the first holder", got, float64(got)/size)
	}
	w = waitCopies(t, laptop, res.CID, 3, 3*time.Minute)
	sent := laptop.StatusJSON().BytesSent - sent0
	t.Logf("3 copies after %v (%v); uploader sent %.3f × the file", time.Since(start).Round(time.Millisecond), holderNames(w), float64(sent)/size)
	if sent > size*115/100 {
		t.Errorf("uploader sent %d bytes, more than 1.15 × %d", sent, size)
	}
}
