package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// This file implements the index of docs/STORE.md#index.

// indexFormat is the format number kept under meta/format. Format 1 kept
// manifests only in the index; Open migrates it (see migrate).
const indexFormat = 2

var (
	bucketMeta      = []byte("meta")
	bucketChunks    = []byte("chunks")
	bucketRefs      = []byte("refs")
	bucketManifests = []byte("manifests")

	keyFormat    = []byte("format")
	keyUsed      = []byte("used")
	keyChunks    = []byte("chunks")
	keyManifests = []byte("manifests")
	keyCorrupt   = []byte("corrupt")
)

// Manifest record flags (docs/STORE.md#index).
const (
	// flagPinned marks a manifest stored by Put: the local user handed the
	// whole content to this host.
	flagPinned byte = 1 << 0
)

// counters mirror the meta bucket.
type counters struct {
	used, chunks, manifests, corrupt int64
	// listChanged says the transaction added or removed a manifest (not
	// stored: it invalidates the cached listing of Manifests).
	listChanged bool
}

// initIndex creates the buckets of a new index and returns the format of
// the index, 1 or indexFormat.
func initIndex(tx *bolt.Tx) (uint64, error) {
	for _, b := range [][]byte{bucketMeta, bucketChunks, bucketRefs, bucketManifests} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return 0, fmt.Errorf("creating bucket %s: %w", b, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keyFormat)
	if v == nil {
		return indexFormat, meta.Put(keyFormat, u64(indexFormat))
	}
	if len(v) != 8 || binary.BigEndian.Uint64(v) < 1 || binary.BigEndian.Uint64(v) > indexFormat {
		return 0, fmt.Errorf("index format %x is not 1 to %d", v, indexFormat)
	}
	return binary.BigEndian.Uint64(v), nil
}

func readCounters(tx *bolt.Tx) counters {
	m := tx.Bucket(bucketMeta)
	return counters{
		used:      getI64(m, keyUsed),
		chunks:    getI64(m, keyChunks),
		manifests: getI64(m, keyManifests),
		corrupt:   getI64(m, keyCorrupt),
	}
}

func writeCounters(tx *bolt.Tx, c counters) error {
	m := tx.Bucket(bucketMeta)
	return errors.Join(
		m.Put(keyUsed, u64(uint64(c.used))),
		m.Put(keyChunks, u64(uint64(c.chunks))),
		m.Put(keyManifests, u64(uint64(c.manifests))),
		m.Put(keyCorrupt, u64(uint64(c.corrupt))),
	)
}

func getI64(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func u64(n uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, n)
}

// chunkSize returns the recorded size of a present chunk.
func chunkSize(tx *bolt.Tx, key []byte) (int64, bool) {
	v := tx.Bucket(bucketChunks).Get(key)
	if len(v) != 4 {
		return 0, false
	}
	return int64(binary.BigEndian.Uint32(v)), true
}

// addChunk records a chunk as present unless it already is.
func addChunk(tx *bolt.Tx, c *counters, key []byte, size int) error {
	if _, ok := chunkSize(tx, key); ok {
		return nil
	}
	c.used += int64(size)
	c.chunks++
	return tx.Bucket(bucketChunks).Put(key, binary.BigEndian.AppendUint32(nil, uint32(size)))
}

// dropChunk records a chunk as absent and reports whether it was present.
func dropChunk(tx *bolt.Tx, c *counters, key []byte) (bool, error) {
	size, ok := chunkSize(tx, key)
	if !ok {
		return false, nil
	}
	c.used -= size
	c.chunks--
	return true, tx.Bucket(bucketChunks).Delete(key)
}

func refCount(tx *bolt.Tx, key []byte) uint64 {
	v := tx.Bucket(bucketRefs).Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// addRef adds delta to a chunk's reference count and returns the new count.
// A count of zero is stored as no entry.
func addRef(tx *bolt.Tx, key []byte, delta int) (uint64, error) {
	n := int64(refCount(tx, key)) + int64(delta)
	if n < 0 {
		return 0, fmt.Errorf("reference count of chunk below zero")
	}
	if n == 0 {
		return 0, tx.Bucket(bucketRefs).Delete(key)
	}
	return uint64(n), tx.Bucket(bucketRefs).Put(key, u64(uint64(n)))
}

// distinctChunks returns the binary CIDs of m's chunks, each once; for a
// coded manifest also those of its shards, so that a recorded manifest keeps
// the shards a holder stores (docs/ERASURE.md#store).
func distinctChunks(m *Manifest) [][]byte {
	seen := make(map[string]bool, len(m.Chunks))
	var out [][]byte
	for _, c := range m.Chunks {
		keys := []string{c.CID.KeyString()}
		for _, sh := range c.Shards {
			keys = append(keys, sh.KeyString())
		}
		for _, k := range keys {
			if !seen[k] {
				seen[k] = true
				out = append(out, []byte(k))
			}
		}
	}
	return out
}
