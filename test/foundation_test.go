package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// writeRandomFile writes size pseudo-random bytes (seeded) to path and returns
// their SHA-256.
func writeRandomFile(t testing.TB, path string, size int64, seed uint64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)})
	if _, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(rng, size)); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func fileSHA256(t testing.TB, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func TestCLIWithoutDaemon(t *testing.T) {
	home := t.TempDir()
	r := harness.RunCLI(bin, "--home", home, "status")
	if r.Code == 0 {
		t.Fatalf("status without a daemon exited 0: %s", r.Stdout)
	}
	want := "annex-swarmd is not running for " + home + "; start it with: annex-swarmd --home " + home
	if !strings.Contains(r.Stderr, want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 {
		t.Errorf("stderr = %q, want one line containing %q", r.Stderr, want)
	}
}

func TestPutGetRoundTrip1GiB(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB round trip skipped in -short")
	}
	c := harness.New(t, bin, 1, harness.Options{})
	n := c.Nodes[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "big.bin")
	sum := writeRandomFile(t, src, 1<<30, 1)

	root := harness.LastLine(n.MustCLI("put", src))
	out := filepath.Join(dir, "out.bin")
	n.MustCLI("get", root, "-o", out)
	if fileSHA256(t, out) != sum {
		t.Fatal("1 GiB file did not round-trip byte for byte")
	}
	// A get that hashes what it writes (the git-annex remote's RETRIEVE).
	cl := client.New(n.Home)
	hashed := filepath.Join(dir, "hashed.bin")
	res, err := cl.Get(t.Context(), client.GetRequest{CID: root, Path: hashed, NoSync: true, Hash: "SHA256"}, nil)
	if err != nil || res.Digest != hex.EncodeToString(sum[:]) || fileSHA256(t, hashed) != sum {
		t.Fatalf("get with SHA256: digest %q, want %x (err %v)", res.Digest, sum, err)
	}
	if _, err := cl.Get(t.Context(), client.GetRequest{CID: root, Path: hashed, Hash: "CRC32"}, nil); err == nil || !strings.Contains(err.Error(), "unknown hash") {
		t.Fatalf("get with an unknown hash: %v", err)
	}
	// The same content put again is deduplicated: same CID, no growth.
	before := n.StatusJSON().Store.Used
	if again := harness.LastLine(n.MustCLI("put", src)); again != root {
		t.Errorf("second put gave %s, want %s", again, root)
	}
	if after := n.StatusJSON().Store.Used; after != before {
		t.Errorf("store grew from %d to %d on a duplicate put", before, after)
	}
}

func TestIDAndStatusJSON(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{Config: "[limits]\nstorage = \"10MiB\"\n"}).Nodes[0]
	var id client.ID
	if err := json.Unmarshal([]byte(n.MustCLI("id", "--json")), &id); err != nil {
		t.Fatal(err)
	}
	if id.PeerID == "" || id.PeerID != n.PeerID || len(id.Addrs) == 0 {
		t.Errorf("id = %+v", id)
	}
	for _, a := range id.Addrs {
		if !strings.HasPrefix(a, "/ip4/127.0.0.1/") {
			t.Errorf("listening off loopback: %s", a)
		}
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(n.MustCLI("status", "--json")), &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"peer_id", "swarm", "connected_peers", "store", "bytes_sent", "bytes_received"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("status --json lacks %q", k)
		}
	}
	if st := n.StatusJSON(); st.Store.Limit != 10<<20 {
		t.Errorf("store limit = %d, want %d", st.Store.Limit, 10<<20)
	}
}

func TestStorageLimitRefusesPut(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{Config: "[limits]\nstorage = \"3MiB\"\n"}).Nodes[0]
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	writeRandomFile(t, small, 1<<20, 2)
	n.MustCLI("put", small)
	used := n.StatusJSON().Store.Used

	big := filepath.Join(dir, "big")
	writeRandomFile(t, big, 4<<20, 3)
	r := n.CLI("put", big)
	if r.Code == 0 {
		t.Fatal("put over the storage limit succeeded")
	}
	if !strings.Contains(r.Stderr, "storage limit") && !strings.Contains(r.Stderr, "space") {
		t.Errorf("unclear error: %q", r.Stderr)
	}
	if after := n.StatusJSON().Store.Used; after != used {
		t.Errorf("refused put changed used bytes from %d to %d", used, after)
	}
}

func TestFsckFindsCorruption(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	dir := t.TempDir()
	src := filepath.Join(dir, "f")
	writeRandomFile(t, src, 3<<20, 4)
	root := harness.LastLine(n.MustCLI("put", src))
	if out := n.MustCLI("fsck"); !strings.Contains(out, "0 corrupt") {
		t.Fatalf("fresh store not clean: %s", out)
	}
	// Flip one byte of one chunk file behind the daemon's back.
	var victim string
	filepath.WalkDir(filepath.Join(n.Home, "store", "chunks"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && victim == "" {
			victim = p
		}
		return nil
	})
	if victim == "" {
		t.Fatal("no chunk file found under the store")
	}
	b, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(victim, b, 0o600); err != nil {
		t.Fatal(err)
	}
	r := n.CLI("fsck", "--json")
	if r.Code == 0 {
		t.Fatalf("fsck of a corrupt store exited 0: %s", r.Stdout)
	}
	var res client.FsckResult
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatalf("decoding fsck: %v (%s)", err, r.Stdout)
	}
	if len(res.Corrupt) != 1 || !strings.Contains(victim, res.Corrupt[0]) {
		t.Errorf("fsck corrupt = %v, victim %s", res.Corrupt, victim)
	}
	if st := n.StatusJSON(); st.Store.Corrupt != 1 {
		t.Errorf("corrupt counter = %d, want 1", st.Store.Corrupt)
	}
	// The content can no longer be read whole, and says so.
	if r := n.CLI("get", root, "-o", filepath.Join(dir, "out")); r.Code == 0 {
		t.Error("get of content with a quarantined chunk succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); err == nil {
		t.Error("a failed get left a file behind")
	}
}

func TestSecondDaemonRefusedAndCleanStop(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	cmd := exec.Command(bin.Daemon, "--home", n.Home, "--listen", "/ip4/127.0.0.1/tcp/0")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("second daemon on the same home started")
	}
	if !strings.Contains(string(out), "already running") {
		t.Errorf("second daemon said %q", out)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("clean stop: %v\n%s", err, n.LogTail(10))
	}
	if _, err := os.Stat(filepath.Join(n.Home, "control.sock")); err == nil {
		t.Error("control.sock left behind after a clean stop")
	}
	// The home starts again with the same identity.
	id := n.PeerID
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	if n.PeerID != id {
		t.Errorf("identity changed across restart: %s -> %s", id, n.PeerID)
	}
	st, err := os.Stat(filepath.Join(n.Home, "control.sock"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("control.sock mode: %v %v", st, err)
	}
}

func TestBadConfigRefusedWithLine(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config.toml"), []byte("[limits]\nstorage = \"5 potatoes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin.Daemon, "--home", home)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) {
		t.Fatalf("daemon started with a bad config: %v %s", err, out)
	}
	if !strings.Contains(string(out), filepath.Join(home, "config.toml")+":2:") {
		t.Errorf("error lacks file and line: %q", out)
	}
}

// TestPutManyFiles puts several files in one command: a line "CID<TAB>FILE"
// for each file stored, a missing file named on stderr with exit 1 while the
// others are stored, and every content read back byte for byte.
func TestPutManyFiles(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	dir := t.TempDir()
	var files []string
	for i := range 5 {
		f := filepath.Join(dir, fmt.Sprint("f", i))
		writeRandomFile(t, f, int64(1+i)<<16, uint64(40+i))
		files = append(files, f)
	}
	missing := filepath.Join(dir, "missing")
	r := n.CLI(append([]string{"put"}, append(files, missing)...)...)
	if r.Code != 1 || !strings.Contains(r.Stderr, missing) || !strings.Contains(r.Stderr, "1 of 6 files") {
		t.Fatalf("put of five files and a missing one: exit %d, stderr %q", r.Code, r.Stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != len(files) {
		t.Fatalf("want %d lines, got %q", len(files), r.Stdout)
	}
	for i, line := range lines {
		cid, name, ok := strings.Cut(line, "\t")
		if !ok || name != files[i] {
			t.Fatalf("line %d is %q, want CID<TAB>%s", i, line, files[i])
		}
		out := filepath.Join(dir, fmt.Sprint("back", i))
		n.MustCLI("get", cid, "-o", out)
		want, _ := os.ReadFile(files[i])
		got, err := os.ReadFile(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("file %d read back differs (err %v)", i, err)
		}
	}
}
