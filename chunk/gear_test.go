package chunk

import "testing"

// TestGearTable checks the committed table against its generator.
func TestGearTable(t *testing.T) {
	x := uint64(0x616e6e6578737761)
	for i := range gear {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		z ^= z >> 31
		if gear[i] != z {
			t.Fatalf("gear[%d] = %#x, splitmix64 gives %#x", i, gear[i], z)
		}
	}
}
