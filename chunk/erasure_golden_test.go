package chunk_test

import (
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// TestShardGolden pins the coding (docs/ERASURE.md#layout): shard CIDs are
// part of every coded manifest, so a change of the Reed-Solomon matrix or
// field (a library upgrade, an option) must fail here instead of silently
// giving the same chunk new shards.
func TestShardGolden(t *testing.T) {
	data := make([]byte, 100_001)
	for i := range data {
		data[i] = byte((i*7 + 3) % 251)
	}
	_, ids, err := chunk.EncodeChunk(data, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"bafkreid7dorav2xadd254vzivfbwnsuei5x577t2nmlcf7vcswjnd7ugre",
		"bafkreif7uehy6cgofx2okkl5k7gzdqyxfkv7rfy3wllwuzjkh7axndfcla",
		"bafkreicijhawo7qcma2htl2mfqszyyzqzccmh3lcvglyauwkesii6mfp4a",
		"bafkreig5rfbwqhzpstbr6vgpakgznpnld6tujxpykfyka62ixamrw5lezq",
		"bafkreihfjdtkpbrtpvug56wqvnquxsvrkbxnyfwhyfpoz6ns4zodkgx4em",
		"bafkreiaq6f5yvs6z3cwkeeyawsxmnpw44lfzkoif2lkhvw7pgqwhilkz3q",
	}
	for i, w := range want {
		if ids[i].String() != w {
			t.Errorf("shard %d of the golden chunk is %s, want %s", i, ids[i], w)
		}
	}
}
