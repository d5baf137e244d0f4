package replicate

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func TestHappiness(t *testing.T) {
	all := []int{0, 1, 2, 3, 4, 5}
	for _, tc := range []struct {
		name string
		sets map[peer.ID][]int
		want int
	}{
		{"one set each", map[peer.ID][]int{"a": {0}, "b": {1}, "c": {2}, "d": {3}, "e": {4}, "f": {5}}, 6},
		{"two members on one set", map[peer.ID][]int{"a": {0}, "b": {0}, "c": {2}}, 2},
		{"a whole copy is one member", map[peer.ID][]int{"a": all, "b": {1}, "c": {2}}, 3},
		{"augmenting path", map[peer.ID][]int{"a": {0, 1}, "b": {0}}, 2},
		{"two members with two sets", map[peer.ID][]int{"a": {0, 1}, "b": {0, 1}, "c": {0, 1}}, 2},
		{"none", map[peer.ID][]int{}, 0},
	} {
		if got := happiness(tc.sets, 6); got != tc.want {
			t.Errorf("%s: happiness = %d, want %d", tc.name, got, tc.want)
		}
	}
}
