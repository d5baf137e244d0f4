package daemon

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// maxKeyFile bounds the identity file read from disk.
const maxKeyFile = 4096

// LoadOrCreateIdentity reads the Ed25519 libp2p key at path, creating it (mode
// 0600, written atomically) on first start. A key file readable by others is
// refused.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	st, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createIdentity(path)
	case err != nil:
		return nil, fmt.Errorf("reading identity %s: %w", path, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity %s has mode %v; it must be 0600 (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	if st.Size() > maxKeyFile {
		return nil, fmt.Errorf("identity %s: file is %d bytes, larger than a key", path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading identity %s: %w", path, err)
	}
	k, err := crypto.UnmarshalPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("decoding identity %s: %w", path, err)
	}
	return k, nil
}

func createIdentity(path string) (crypto.PrivKey, error) {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating identity: %w", err)
	}
	b, err := crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encoding identity: %w", err)
	}
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("writing identity: %w", err)
	}
	return k, nil
}
