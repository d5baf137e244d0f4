package remote

import (
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// keyCheck is what a git-annex key says about its content: the size when the
// key carries one, and a hash when its backend is a hashing one.
type keyCheck struct {
	size    int64 // -1 when unknown
	newHash func() hash.Hash
	digest  string // lower-case hex, "" when the backend has no hash
	backend string
	// hashName is the backend's hash in client.Hashes ("" without one).
	hashName string
}

// parseKey reads "BACKEND-sSIZE-mMTIME--NAME" (fields between the backend and
// "--" are optional). For the E variants the hash is NAME up to the first dot.
func parseKey(key string) (keyCheck, error) {
	kc := keyCheck{size: -1}
	head, name, ok := strings.Cut(key, "--")
	if !ok {
		return kc, fmt.Errorf("key %q: no \"--\" separator", key)
	}
	fields := strings.Split(head, "-")
	kc.backend = fields[0]
	for _, f := range fields[1:] {
		if strings.HasPrefix(f, "S") || strings.HasPrefix(f, "C") {
			// A chunk of a chunked remote ("-S<chunksize>-C<n>"): the hash
			// and size are the whole content's, which git-annex checks
			// itself once the chunks are joined.
			return keyCheck{size: -1, backend: kc.backend}, nil
		}
		if v, ok := strings.CutPrefix(f, "s"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return kc, fmt.Errorf("key %q: bad size field %q", key, f)
			}
			kc.size = n
		}
	}
	b := kc.backend
	if strings.HasSuffix(b, "E") {
		b = strings.TrimSuffix(b, "E")
		name, _, _ = strings.Cut(name, ".")
	}
	h, ok := client.Hashes[b]
	if !ok {
		return kc, nil // WORM, URL and friends carry no hash
	}
	kc.newHash, kc.hashName = h.New, b
	digestLen := h.Size
	if len(name) != 2*digestLen {
		return kc, fmt.Errorf("key %q: %s digest has %d hex digits, want %d", key, kc.backend, len(name), 2*digestLen)
	}
	kc.digest = strings.ToLower(name)
	return kc, nil
}

// check compares a retrieved content's size and digest (under
// kc.hashName) with what the key says.
func (kc keyCheck) check(size int64, digest string) error {
	if kc.size >= 0 && size != kc.size {
		return fmt.Errorf("retrieved %d bytes, the key says %d", size, kc.size)
	}
	if kc.digest != "" && digest != kc.digest {
		return fmt.Errorf("retrieved content has %s %s, the key says %s", kc.backend, digest, kc.digest)
	}
	return nil
}

// verifyDigest checks the file's size and a digest of its content that
// the daemon computed while writing it.
func (kc keyCheck) verifyDigest(path, digest string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	return kc.check(st.Size(), digest)
}

// verifyFile checks the file against what the key says, hashing it.
func (kc keyCheck) verifyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	var digest string
	if kc.digest != "" && (kc.size < 0 || st.Size() == kc.size) {
		h := kc.newHash()
		if _, err := io.Copy(h, f); err != nil {
			return fmt.Errorf("hashing %s: %w", path, err)
		}
		digest = hex.EncodeToString(h.Sum(nil))
	}
	return kc.check(st.Size(), digest)
}
