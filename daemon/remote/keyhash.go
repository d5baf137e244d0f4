package remote

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// keyCheck is what a git-annex key says about its content: the size when the
// key carries one, and a hash when its backend is a hashing one.
type keyCheck struct {
	size    int64 // -1 when unknown
	newHash func() hash.Hash
	digest  string // lower-case hex, "" when the backend has no hash
	backend string
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
	var digestLen int
	switch b {
	case "SHA256":
		kc.newHash, digestLen = sha256.New, sha256.Size
	case "SHA512":
		kc.newHash, digestLen = sha512.New, sha512.Size
	case "SHA384":
		kc.newHash, digestLen = sha512.New384, sha512.Size384
	case "SHA224":
		kc.newHash, digestLen = sha256.New224, sha256.Size224
	case "SHA1":
		kc.newHash, digestLen = sha1.New, sha1.Size
	case "MD5":
		kc.newHash, digestLen = md5.New, md5.Size
	case "BLAKE2B256":
		kc.newHash, digestLen = mustBlake2b(blake2b.New256), 32
	case "BLAKE2B512":
		kc.newHash, digestLen = mustBlake2b(blake2b.New512), 64
	default:
		return kc, nil // WORM, URL and friends carry no hash
	}
	if len(name) != 2*digestLen {
		return kc, fmt.Errorf("key %q: %s digest has %d hex digits, want %d", key, kc.backend, len(name), 2*digestLen)
	}
	kc.digest = strings.ToLower(name)
	return kc, nil
}

func mustBlake2b(f func([]byte) (hash.Hash, error)) func() hash.Hash {
	return func() hash.Hash {
		h, err := f(nil)
		if err != nil {
			panic(err) // unkeyed BLAKE2b cannot fail
		}
		return h
	}
}

// verifyFile checks the file against what the key says.
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
	if kc.size >= 0 && st.Size() != kc.size {
		return fmt.Errorf("retrieved %d bytes, the key says %d", st.Size(), kc.size)
	}
	if kc.digest == "" {
		return nil
	}
	h := kc.newHash()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("hashing %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != kc.digest {
		return fmt.Errorf("retrieved content has %s %s, the key says %s", kc.backend, got, kc.digest)
	}
	return nil
}
