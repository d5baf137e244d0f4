package chunk

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/ipfs/go-cid"
)

// Manifests answers from its last listing while no manifest was added or
// removed (no read transaction: a round at rest does not walk the index),
// hands out a copy, and lists again after a put or a removal.
func TestManifestsListingFollowsChanges(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	put := func(i byte) cid.Cid {
		t.Helper()
		data := bytes.Repeat([]byte{i, i + 1, i + 2}, 1000)
		root, _, err := st.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
		if err != nil {
			t.Fatal(err)
		}
		return root
	}
	list := func() []cid.Cid {
		t.Helper()
		l, err := st.Manifests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	has := func(l []cid.Cid, c cid.Cid) bool { return slices.ContainsFunc(l, c.Equals) }

	a, b := put(1), put(2)
	if l := list(); len(l) != 2 || !has(l, a) || !has(l, b) {
		t.Fatalf("listing after two puts: %v", l)
	}
	reads := st.db.Stats().TxN
	l := list()
	if n := st.db.Stats().TxN - reads; n != 0 {
		t.Errorf("a listing with nothing changed read the index (%d read transactions)", n)
	}
	l[0] = cid.Undef // the caller's copy
	if l := list(); len(l) != 2 || !has(l, a) || !has(l, b) {
		t.Fatalf("listing after the caller changed its copy: %v", l)
	}

	c := put(3)
	if l := list(); len(l) != 3 || !has(l, c) {
		t.Fatalf("listing after a third put: %v", l)
	}
	if err := st.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	if l := list(); len(l) != 2 || has(l, a) || !has(l, b) || !has(l, c) {
		t.Fatalf("listing after removing the first: %v", l)
	}
	// Recording a manifest held already changes nothing.
	m, err := st.Manifest(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.PutManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	reads = st.db.Stats().TxN
	if l := list(); len(l) != 2 || st.db.Stats().TxN != reads {
		t.Fatalf("listing after recording a held manifest again: %v, %d read transactions", l, st.db.Stats().TxN-reads)
	}
}
