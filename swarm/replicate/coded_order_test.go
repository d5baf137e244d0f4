package replicate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// TestSetOrderKeyFollowsTheFirstChunk: an edit in the middle of a coded
// content changes its root but not the order in which its sets are dealt
// to members, so set i of the new version goes where set i of the old is;
// a content with another first chunk is ordered otherwise.
func TestSetOrderKeyFollowsTheFirstChunk(t *testing.T) {
	ctx := context.Background()
	build := func(data []byte) (*chunk.Manifest, []byte) {
		t.Helper()
		m, err := chunk.BuildCodedManifest(ctx, bytes.NewReader(data), "", chunk.DefaultParams, 4, 2,
			func(chunk.ChunkRef, []byte, [][]byte) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return m, enc
	}
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 8<<20)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	edited := slices.Clone(data)
	for i := 4 << 20; i < 5<<20; i++ {
		edited[i] ^= 0x5a
	}
	other := slices.Clone(data)
	other[0] ^= 1

	var peers []peer.ID
	for i := range 12 {
		peers = append(peers, peer.ID(fmt.Sprintf("member-%02d", i)))
	}
	orderOf := func(data []byte) ([]peer.ID, string) {
		m, enc := build(data)
		root := chunk.ManifestCID(enc)
		return rank(setOrderKey(m, root), slices.Clone(peers)), root.String()
	}
	o1, r1 := orderOf(data)
	o2, r2 := orderOf(edited)
	o3, _ := orderOf(other)
	if r1 == r2 {
		t.Fatal("the edit did not change the root")
	}
	if !slices.Equal(o1, o2) {
		t.Errorf("an edit in the middle reordered the sets:\n%v\n%v", o1, o2)
	}
	if slices.Equal(o1, o3) {
		t.Errorf("contents with different first chunks got one order: %v", o1)
	}
	if k := setOrderKey(&chunk.Manifest{}, chunk.ManifestCID(nil)); k != chunk.ManifestCID(nil) {
		t.Errorf("an empty manifest is ordered by %s, want its root", k)
	}
}
