package chunk

import (
	"bytes"
	"context"
	"testing"
)

// TestRemoveWhileHeldLeavesNothing: a Remove that runs while a write still
// holds the content (its index commit done, its holds not yet released —
// the chaos suite's orphaned manifest object and unreferenced chunk of
// 2026-12-02) leaves the manifest object and the chunks to the last
// holder, which cleans them up; a content recorded again meanwhile is
// kept whole.
func TestRemoveWhileHeldLeavesNothing(t *testing.T) {
	ctx := context.Background()
	st, err := Open(t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	data := bytes.Repeat([]byte("held while removed "), 20000)
	root, m, err := st.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{root.KeyString()}
	for _, c := range m.Chunks {
		keys = append(keys, c.CID.KeyString())
	}
	hold := func() {
		for _, k := range keys {
			st.hold(k)
		}
	}
	clean := func(what string) {
		t.Helper()
		rep, err := st.Fsck(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.Clean() {
			t.Fatalf("%s: fsck %+v", what, rep)
		}
	}

	hold()
	if err := st.Remove(ctx, root); err != nil {
		t.Fatal(err)
	}
	st.unhold(keys...)
	clean("removed while held")
	if n := st.Stats().Chunks; n != 0 {
		t.Fatalf("%d chunks left in the index", n)
	}

	// Put again, removed while held, recorded again before the holds end:
	// the content stays whole.
	if root, _, err = st.Put(ctx, bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	hold()
	if err := st.Remove(ctx, root); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.Put(ctx, bytes.NewReader(data), int64(len(data)), ""); err != nil {
		t.Fatal(err)
	}
	st.unhold(keys...)
	clean("recorded again while held")
	var out bytes.Buffer
	if _, err := st.WriteTo(ctx, root, &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("the content recorded again: %v", err)
	}
}
