package chunk_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

// codedContent is a coded manifest with every shard of every chunk:
// shards[j][i] is shard i of chunk j.
type codedContent struct {
	m      *chunk.Manifest
	root   cid.Cid
	shards [][][]byte
}

func newCodedContent(t *testing.T, data []byte, k, m int) codedContent {
	t.Helper()
	var c codedContent
	man, err := chunk.BuildCodedManifest(context.Background(), bytes.NewReader(data), "", chunktest.Params, k, m,
		func(_ chunk.ChunkRef, _ []byte, shards [][]byte) error {
			own := make([][]byte, len(shards))
			for i, sh := range shards {
				own[i] = bytes.Clone(sh) // shards alias the chunker's buffer
			}
			c.shards = append(c.shards, own)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	c.m = man
	if c.root, err = man.CID(); err != nil {
		t.Fatal(err)
	}
	return c
}

// set returns shard i of every chunk.
func (c codedContent) set(i int) [][]byte {
	out := make([][]byte, len(c.shards))
	for j := range c.shards {
		out[j] = c.shards[j][i]
	}
	return out
}

// distinctBytes is the size of the distinct shards of index i.
func (c codedContent) distinctBytes(i int) int64 {
	seen := map[cid.Cid]bool{}
	var n int64
	for j, ch := range c.m.Chunks {
		if !seen[ch.Shards[i]] {
			seen[ch.Shards[i]] = true
			n += int64(len(c.shards[j][i]))
		}
	}
	return n
}

func openShardStore(t *testing.T, dir string, limit int64) *chunk.Store {
	t.Helper()
	s, err := chunk.Open(dir, chunk.Options{Chunking: chunktest.Params, Limit: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestShardHolder stores one member's shard set of a coded content in a real
// store: recorded, counted, deduplicated, read back verified, kept across a
// reopen, checked by Fsck and removed with the content.
func TestShardHolder(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s := openShardStore(t, dir, 0)
	c := newCodedContent(t, chunktest.Content(5, 300_000), 4, 2)
	if len(c.m.Chunks) < 5 {
		t.Fatalf("only %d chunks", len(c.m.Chunks))
	}

	root, err := s.PutShards(ctx, c.m, 2, c.set(2))
	if err != nil || root != c.root {
		t.Fatalf("PutShards = %s, %v; want %s", root, err, c.root)
	}
	st := s.Stats()
	if st.Used != c.distinctBytes(2) || st.Manifests != 1 {
		t.Fatalf("stats %+v, want used %d and 1 manifest", st, c.distinctBytes(2))
	}
	if held, err := s.HeldShards(ctx, root); err != nil || !slices.Equal(held, []int{2}) {
		t.Fatalf("HeldShards = %v, %v", held, err)
	}
	if miss, err := s.MissingShards(ctx, root, 3); err != nil || len(miss) != len(c.m.Chunks) {
		t.Fatalf("MissingShards(3) = %v, %v", miss, err)
	}
	for j := range c.m.Chunks {
		got, err := s.GetShard(ctx, root, j, 2)
		if err != nil || !bytes.Equal(got, c.shards[j][2]) {
			t.Fatalf("GetShard(%d, 2): %v", j, err)
		}
		if _, err := s.GetShard(ctx, root, j, 3); !errors.Is(err, chunk.ErrNotFound) {
			t.Fatalf("GetShard(%d, 3) of a shard not held: %v", j, err)
		}
	}

	// Again, and a second content sharing most chunks: only new shards count.
	if _, err := s.PutShards(ctx, c.m, 2, c.set(2)); err != nil || s.Stats().Used != st.Used {
		t.Fatalf("PutShards twice: %v, used %d → %d", err, st.Used, s.Stats().Used)
	}
	edited := chunktest.Content(5, 300_000)
	copy(edited[150_000:], chunktest.Content(55, 40_000)) // a few whole chunks change
	c2 := newCodedContent(t, edited, 4, 2)
	if _, err := s.PutShards(ctx, c2.m, 2, c2.set(2)); err != nil {
		t.Fatal(err)
	}
	var fresh int64
	seen := map[cid.Cid]bool{}
	for _, ch := range c.m.Chunks {
		seen[ch.Shards[2]] = true
	}
	for j, ch := range c2.m.Chunks {
		if !seen[ch.Shards[2]] {
			seen[ch.Shards[2]] = true
			fresh += int64(len(c2.shards[j][2]))
		}
	}
	if got := s.Stats().Used; got != st.Used+fresh || fresh == 0 || fresh > c.distinctBytes(2)/2 {
		t.Fatalf("second content: used %d → %d, %d bytes of new shards", st.Used, got, fresh)
	}

	// Reopen: the holding is on disk.
	s.Close()
	s = openShardStore(t, dir, 0)
	if held, err := s.HeldShards(ctx, root); err != nil || !slices.Equal(held, []int{2}) {
		t.Fatalf("HeldShards after reopen = %v, %v", held, err)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() || rep.Checked != int(s.Stats().Chunks) {
		t.Fatalf("Fsck of a clean shard holder: %+v, %v", rep, err)
	}

	// Fsck verifies shards like chunks.
	victim := c.m.Chunks[1].Shards[2]
	if !slices.ContainsFunc(c2.m.Chunks, func(ch chunk.ChunkRef) bool { return ch.Shards[2] == victim }) {
		t.Fatal("test content: chunk 1 should be shared by both contents")
	}
	file := filepath.Join(dir, "chunks", victim.Hash().HexString()[4:6], victim.String())
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[7] ^= 1
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Fsck(ctx, true)
	if err != nil || len(rep.Corrupt) != 1 || rep.Corrupt[0] != victim {
		t.Fatalf("Fsck after flipping a shard: %+v, %v", rep, err)
	}
	if held, _ := s.HeldShards(ctx, root); len(held) != 0 {
		t.Fatalf("HeldShards with a quarantined shard = %v", held)
	}
	if miss, _ := s.MissingShards(ctx, root, 2); !slices.Equal(miss, []int{1}) {
		t.Fatalf("MissingShards after quarantine = %v, want [1]", miss)
	}
	// A batch of one shard completes the set again.
	batch := make([][]byte, len(c.m.Chunks))
	batch[1] = c.shards[1][2]
	if _, err := s.PutShards(ctx, c.m, 2, batch); err != nil {
		t.Fatal(err)
	}
	if held, _ := s.HeldShards(ctx, root); !slices.Equal(held, []int{2}) {
		t.Fatalf("HeldShards after the batch = %v", held)
	}

	// Remove frees what only the removed content used, then everything.
	if err := s.Remove(ctx, root); err != nil {
		t.Fatal(err)
	}
	if got := s.Stats().Used; got != c2.distinctBytes(2) {
		t.Fatalf("after removing the first content: used %d, want %d", got, c2.distinctBytes(2))
	}
	if err := s.Remove(ctx, c2.root); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.Used != 0 || st.Chunks != 0 || st.Manifests != 0 {
		t.Fatalf("after removing both: %+v", st)
	}
	if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() {
		t.Fatalf("Fsck after removing: %+v, %v", rep, err)
	}
}

// TestPutShardsRejects: a lying shard, a set over the limit and a manifest
// that is not coded store nothing.
func TestPutShardsRejects(t *testing.T) {
	ctx := t.Context()
	c := newCodedContent(t, chunktest.Content(6, 200_000), 4, 2)

	s := openShardStore(t, t.TempDir(), 0)
	bad := c.set(4)
	bad[2] = bytes.Clone(bad[2])
	bad[2][0] ^= 1
	if _, err := s.PutShards(ctx, c.m, 4, bad); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("a lying shard: %v, want ErrCorrupt", err)
	}
	if _, err := s.PutShards(ctx, c.m, 3, c.set(4)); !errors.Is(err, chunk.ErrCorrupt) {
		t.Fatalf("shards of index 4 given as index 3: %v, want ErrCorrupt", err)
	}
	if st := s.Stats(); st.Used != 0 || st.Manifests != 0 {
		t.Fatalf("after refused puts: %+v", st)
	}
	for _, i := range []int{-1, 6} {
		if _, err := s.PutShards(ctx, c.m, i, c.set(0)); err == nil {
			t.Errorf("shard index %d accepted", i)
		}
	}
	if _, err := s.PutShards(ctx, c.m, 0, c.set(0)[1:]); err == nil {
		t.Error("a short shard list accepted")
	}
	v1, err := chunk.BuildManifest(ctx, bytes.NewReader(chunktest.Content(6, 200_000)), "", chunktest.Params,
		func(chunk.ChunkRef, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutShards(ctx, v1, 0, c.set(0)); !errors.Is(err, chunk.ErrBadManifest) {
		t.Errorf("a version 1 manifest: %v", err)
	}
	if _, err := s.HeldShards(ctx, c.root); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("HeldShards of a content not recorded: %v", err)
	}

	small := openShardStore(t, t.TempDir(), c.distinctBytes(0)-1)
	if _, err := small.PutShards(ctx, c.m, 0, c.set(0)); !errors.Is(err, chunk.ErrNoSpace) {
		t.Fatalf("over the limit: %v, want ErrNoSpace", err)
	}
	if st := small.Stats(); st.Used != 0 || st.Manifests != 0 {
		t.Fatalf("after ErrNoSpace: %+v", st)
	}
	small.SetLimit(c.distinctBytes(0))
	if _, err := small.PutShards(ctx, c.m, 0, c.set(0)); err != nil {
		t.Fatalf("at the limit: %v", err)
	}
}

// TestShedChunks: a member holding a content whole (replicated, root O)
// that gets shard set 1 of the coded form holds the coded content whole
// too; once O is removed, ShedChunks leaves it the set alone. A chunk
// another manifest still needs stays.
func TestShedChunks(t *testing.T) {
	ctx := context.Background()
	s := openShardStore(t, t.TempDir(), 0)
	data := chunktest.Content(51, 600<<10)
	o, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil {
		t.Fatal(err)
	}
	c := newCodedContent(t, data, 4, 2)
	if _, err := s.PutShards(ctx, c.m, 1, c.set(1)); err != nil {
		t.Fatal(err)
	}
	if missing, err := s.Missing(ctx, c.root); err != nil || len(missing) != 0 {
		t.Fatalf("the coded content is not whole here: %d missing, %v", len(missing), err)
	}
	if n, err := s.ShedChunks(ctx, c.root); err != nil || n != 0 {
		t.Fatalf("shed %d chunks the replicated root still needs, err %v", n, err)
	}
	if err := s.Remove(ctx, o); err != nil {
		t.Fatal(err)
	}
	n, err := s.ShedChunks(ctx, c.root)
	if err != nil || n != len(c.m.Chunks) {
		t.Fatalf("shed %d of %d chunks, err %v", n, len(c.m.Chunks), err)
	}
	if held, err := s.HeldShards(ctx, c.root); err != nil || !slices.Equal(held, []int{1}) {
		t.Fatalf("held sets %v, %v; want [1]", held, err)
	}
	if missing, _ := s.Missing(ctx, c.root); len(missing) != len(c.m.Chunks) {
		t.Fatalf("%d chunks missing after shedding, want all %d", len(missing), len(c.m.Chunks))
	}
	if used := s.Stats().Used; used != c.distinctBytes(1) {
		t.Fatalf("store uses %d bytes, want the set's %d", used, c.distinctBytes(1))
	}
	for j := range c.m.Chunks {
		if _, err := s.GetShard(ctx, c.root, j, 1); err != nil {
			t.Fatalf("shard 1 of chunk %d: %v", j, err)
		}
	}
	if _, err := s.ShedChunks(ctx, o); !errors.Is(err, chunk.ErrNotFound) {
		t.Fatalf("shedding a removed root: %v, want ErrNotFound", err)
	}
}
