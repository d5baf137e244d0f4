package chunk

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// gatedObjects is a store folder as a Backend whose chunk deletions wait
// for gate: an account that is slow to answer a delete.
type gatedObjects struct {
	dirObjects
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedObjects) Delete(ctx context.Context, kind ObjectKind, id cid.Cid) error {
	if kind == ObjectChunk {
		select {
		case g.entered <- struct{}{}:
		default:
		}
		<-g.gate
	}
	return g.dirObjects.Delete(ctx, kind, id)
}

// A Remove from a store in a Backend deletes its chunk objects without
// holding the store: other writes go on while the account answers, and a
// write of a chunk being deleted waits until the delete is done, so the
// chunk is readable afterwards (not deleted under the new write).
func TestRemoveWithBackendDoesNotBlockTheStore(t *testing.T) {
	g := gatedObjects{dirObjects: dirObjects{t.TempDir()}, entered: make(chan struct{}, 1), gate: make(chan struct{})}
	st, err := Open(t.TempDir(), Options{Backend: g})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	data := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	a := data(300 << 10)
	root, m, err := st.Put(ctx, bytes.NewReader(a), int64(len(a)), "")
	if err != nil {
		t.Fatal(err)
	}
	first := m.Chunks[0].CID
	firstData, err := st.GetChunk(ctx, first)
	if err != nil {
		t.Fatal(err)
	}

	removed := make(chan error, 1)
	go func() { removed <- st.Remove(ctx, root) }()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the Remove never deleted a chunk object")
	}

	// The account holds the delete: another content is stored meanwhile.
	other := data(100 << 10)
	stored := make(chan error, 1)
	go func() {
		_, _, err := st.Put(ctx, bytes.NewReader(other), int64(len(other)), "")
		stored <- err
	}()
	select {
	case err := <-stored:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(g.gate)
		t.Fatal("a put waited for another content's deletion from the account")
	}

	// A write of a chunk being deleted waits for the delete.
	again := make(chan error, 1)
	go func() { again <- st.PutChunk(ctx, first, firstData) }()
	select {
	case err := <-again:
		close(g.gate)
		t.Fatalf("the chunk being deleted was written before its delete ended (err %v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(g.gate)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if err := <-again; err != nil {
		t.Fatal(err)
	}
	got, err := st.GetChunk(ctx, first)
	if err != nil || !bytes.Equal(got, firstData) {
		t.Fatalf("the chunk written again after its delete: %v", err)
	}
}
