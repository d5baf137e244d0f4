package remote

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

func TestKeyCheck(t *testing.T) {
	dir := t.TempDir()
	content := []byte("hello swarm\n")
	sum := sha256.Sum256(content)
	hexsum := hex.EncodeToString(sum[:])
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key, err string
	}{
		{"SHA256E-s12--" + hexsum + ".txt", ""},
		{"SHA256-s12--" + hexsum, ""},
		{"SHA256E-s13--" + hexsum + ".txt", "key says 13"},
		{"SHA256E-s12--" + strings.Repeat("0", 64) + ".txt", "the key says"},
		{"SHA256E-s12--abc.txt", "hex digits"},
		{"WORM-s12-m1700000000--f.txt", ""},
		{"WORM-s99-m1700000000--f.txt", "key says 99"},
		// A chunk of a chunked remote carries the whole content's hash.
		{"SHA256E-s1048576-S10485-C1--" + strings.Repeat("0", 64) + ".bin", ""},
		{"nodashes", "separator"},
	} {
		kc, err := parseKey(tc.key)
		if err == nil {
			err = kc.verifyFile(path)
		}
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.key, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one containing %q", tc.key, err, tc.err)
		}
		// The digest the daemon computes while writing gives the same verdict.
		if kc.digest == "" {
			continue
		}
		h := client.Hashes[kc.hashName].New()
		h.Write(content)
		if derr := kc.verifyDigest(path, hex.EncodeToString(h.Sum(nil))); (derr == nil) != (err == nil) {
			t.Errorf("%s: verifyDigest says %v, verifyFile %v", tc.key, derr, err)
		}
	}
}

func FuzzParseKey(f *testing.F) {
	f.Add("SHA256E-s12--0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.txt")
	f.Add("WORM-s1-m2--x")
	f.Add("SHA256E-s1-S1-C1--00.x")
	f.Fuzz(func(t *testing.T, key string) {
		kc, err := parseKey(key)
		if err != nil {
			return
		}
		if kc.digest != "" && kc.newHash == nil {
			t.Fatalf("%q: digest without a hash", key)
		}
	})
}
