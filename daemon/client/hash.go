package client

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"

	"golang.org/x/crypto/blake2b"
)

// Hashes are the content hashes a get can compute while it writes its
// output (GetRequest.Hash), by git-annex backend name without its E suffix.
var Hashes = map[string]struct {
	New  func() hash.Hash
	Size int // digest bytes
}{
	"SHA256":     {sha256.New, sha256.Size},
	"SHA512":     {sha512.New, sha512.Size},
	"SHA384":     {sha512.New384, sha512.Size384},
	"SHA224":     {sha256.New224, sha256.Size224},
	"SHA1":       {sha1.New, sha1.Size},
	"MD5":        {md5.New, md5.Size},
	"BLAKE2B256": {mustBlake2b(blake2b.New256), 32},
	"BLAKE2B512": {mustBlake2b(blake2b.New512), 64},
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
