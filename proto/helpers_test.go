package proto

import (
	"testing"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

// testCID returns the CIDv1 (raw codec, sha2-256) of data.
func testCID(tb testing.TB, data []byte) cid.Cid {
	tb.Helper()
	h, err := mh.Sum(data, mh.SHA2_256, -1)
	if err != nil {
		tb.Fatalf("hashing: %v", err)
	}
	return cid.NewCidV1(cid.Raw, h)
}

// testData returns n deterministic pseudo-random bytes.
func testData(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed) + 1
	for i := range b {
		x = x*1664525 + 1013904223
		b[i] = byte(x >> 24)
	}
	return b
}

// repeatReader yields data over and over, for decoding benchmarks.
type repeatReader struct {
	data []byte
	off  int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.data[r.off:])
	r.off = (r.off + n) % len(r.data)
	return n, nil
}

// appendUvarintForTest is an independent varint encoder, so that tests do not
// check the frame writer against itself.
func appendUvarintForTest(dst []byte, x uint64) []byte {
	for x >= 0x80 {
		dst = append(dst, byte(x&0x7f|0x80))
		x >>= 7
	}
	return append(dst, byte(x))
}
