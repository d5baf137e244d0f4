package test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// A client member holds nothing it does not need (issue 11, item 2;
// docs/STORE.md "What a client member keeps"): its put serves the file it
// was given and its get writes straight into the output file.

// homeBytes is the disk space used by n's home (allocated blocks), the
// daemon's log left out: the harness runs every daemon at debug level.
func homeBytes(t testing.TB, n *harness.Node) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(n.Home, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == n.LogPath() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			total += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatalf("measuring %s: %v", n.Home, err)
	}
	return total
}

// checkGrowth fails t when n's home grew by more than 1 % of size since before.
func checkGrowth(t testing.TB, n *harness.Node, what string, before, size int64) {
	t.Helper()
	after := homeBytes(t, n)
	t.Logf("%s: the client's home grew by %d bytes (%.3f %% of %d)", what, after-before, 100*float64(after-before)/float64(size), size)
	if after-before > size/100 {
		t.Errorf("%s: the client's home grew by %d bytes, over 1 %% of the %d-byte file", what, after-before, size)
	}
}

// nocopyRecords lists the reference records left in n's home.
func nocopyRecords(t *testing.T, n *harness.Node) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(n.Home, "nocopy"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestClientPutGetKeepsHomeSmall: through the CLI, a client member's put
// and get grow its home by at most 1 % of the file, the holders get the
// bytes, and the client's store is empty afterwards.
func TestClientPutGetKeepsHomeSmall(t *testing.T) {
	rs := formRepl(t, 2, true, harness.SwarmOptions{Copies: 2, CopiesMin: 1}, "1h", nil)
	laptop := rs.client
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	const size = 64 << 20
	sum := writeRandomFile(t, src, size, 31)

	before := homeBytes(t, laptop)
	root := harness.LastLine(laptop.MustCLI("put", src))
	checkGrowth(t, laptop, "put", before, size)
	if st := laptop.StatusJSON().Store; st.Chunks != 0 || st.Manifests != 0 {
		t.Errorf("after the put the client's store holds %d chunks and %d manifests, want none", st.Chunks, st.Manifests)
	}
	if recs := nocopyRecords(t, laptop); len(recs) != 0 {
		t.Errorf("reference records left after the put: %v", recs)
	}
	waitCopies(t, laptop, root, 2, 2*time.Minute)

	before = homeBytes(t, laptop)
	out := filepath.Join(dir, "out")
	laptop.MustCLI("get", root, "-o", out)
	checkGrowth(t, laptop, "get", before, size)
	if fileSHA256(t, out) != sum {
		t.Fatal("the client's get wrote other bytes")
	}
	if st := laptop.StatusJSON().Store; st.Chunks != 0 {
		t.Errorf("after the get the client's store holds %d chunks, want none", st.Chunks)
	}
	// A bulk put of the same content twice: both succeed, one at a time.
	twin1, twin2 := filepath.Join(dir, "twin1"), filepath.Join(dir, "twin2")
	writeRandomFile(t, twin1, 2<<20, 33)
	writeRandomFile(t, twin2, 2<<20, 33)
	lines := strings.Split(strings.TrimSpace(laptop.MustCLI("put", twin1, twin2)), "\n")
	if len(lines) != 2 || strings.Fields(lines[0])[0] != strings.Fields(lines[1])[0] {
		t.Fatalf("bulk put of one content twice: %q", lines)
	}
	if st := laptop.StatusJSON().Store; st.Chunks != 0 || st.Manifests != 0 {
		t.Errorf("after the bulk put the client's store holds %d chunks and %d manifests, want none", st.Chunks, st.Manifests)
	}
	// A storage member keeps today's behaviour: its own copy in its store.
	s0 := rs.c.Nodes[0]
	own := filepath.Join(dir, "own")
	writeRandomFile(t, own, 1<<20, 32)
	s0.MustCLI("put", own)
	if st := s0.StatusJSON().Store; st.Chunks == 0 {
		t.Error("a storage member's put left no chunk in its store")
	}
}

// TestClientPutFileChangedFails: a file changed, or removed, while a client
// member serves its put fails the put with one clear line; the reference
// and the manifest are dropped; a daemon killed during such a put drops
// them when it starts again.
func TestClientPutFileChangedFails(t *testing.T) {
	// The client's upload is capped so that the put lasts several seconds.
	cfg := map[int]string{2: "[limits]\nupload = \"2MiB/s\"\n"}
	rs := formRepl(t, 2, true, harness.SwarmOptions{Copies: 2, CopiesMin: 2}, "1h", cfg)
	laptop := rs.client
	dir := t.TempDir()
	const size = 16 << 20

	// putUntilServing starts a put of a fresh file and returns once the
	// client has sent a part of it (beyond the rate limit's burst).
	putUntilServing := func(name string, seed uint64) (string, <-chan error) {
		src := filepath.Join(dir, name)
		writeRandomFile(t, src, size, seed)
		sent := laptop.StatusJSON().BytesSent
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			_, err := laptop.Client().Put(ctx, client.PutRequest{Path: src}, nil)
			done <- err
		}()
		harness.WaitFor(t, 2*time.Minute, "the client sending "+name, func() bool {
			select {
			case err := <-done:
				t.Fatalf("put of %s ended before the change: %v", name, err)
			default:
			}
			return laptop.StatusJSON().BytesSent-sent >= 5<<20
		})
		return src, done
	}
	wantFail := func(done <-chan error, want string) {
		t.Helper()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("put succeeded although its file %s\n%s", want, laptop.LogTail(80))
			}
			t.Logf("put failed: %v", err)
			if msg := err.Error(); !strings.Contains(msg, "file changed or disappeared while being put") || strings.Contains(msg, "\n") {
				t.Fatalf("put failed with %q, want one line saying the file changed", msg)
			}
		case <-time.After(2 * time.Minute):
			t.Fatal("put still running 2 minutes after its file changed")
		}
		harness.WaitFor(t, 30*time.Second, "reference dropped and store empty", func() bool {
			st := laptop.StatusJSON().Store
			return len(nocopyRecords(t, laptop)) == 0 && st.Manifests == 0 && st.Chunks == 0
		})
	}

	// Changed in place: same size, other bytes near the end.
	src, done := putUntilServing("changed", 41)
	f, err := os.OpenFile(src, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("changed while being put"), size-(1<<20)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	wantFail(done, "changed")

	// Removed.
	src, done = putUntilServing("removed", 42)
	if err := os.Remove(src); err != nil {
		t.Fatal(err)
	}
	wantFail(done, "was removed")

	// Killed during the put: the next start drops the manifest and the record.
	_, done = putUntilServing("killed", 43)
	if recs := nocopyRecords(t, laptop); len(recs) != 1 {
		t.Fatalf("during the put: reference records %v, want one", recs)
	}
	laptop.Kill()
	<-done
	if err := laptop.Start(); err != nil {
		t.Fatal(err)
	}
	if recs := nocopyRecords(t, laptop); len(recs) != 0 {
		t.Errorf("after a restart: reference records %v left", recs)
	}
	if st := laptop.StatusJSON().Store; st.Manifests != 0 || st.Chunks != 0 {
		t.Errorf("after a restart the client's store holds %d manifests and %d chunks, want none", st.Manifests, st.Chunks)
	}
}

// TestGitAnnexClientKeepsNothing: `git annex copy --to swarm` and `git
// annex get --from swarm` from a repository whose daemon is a client
// member grow its home by at most 1 % of the file.
func TestGitAnnexClientKeepsNothing(t *testing.T) {
	requireGitAnnex(t)
	rs := formRepl(t, 2, true, harness.SwarmOptions{Copies: 2, CopiesMin: 1}, "1h", nil)
	laptop := rs.client
	r := newRepo(t, laptop)
	r.run("git", "annex", "numcopies", "1")
	const size = 64 << 20
	r.write("big.bin", size, 51)
	r.run("git", "annex", "add", "big.bin")
	r.run("git", "commit", "-q", "-m", "big")

	before := homeBytes(t, laptop)
	r.run("git", "annex", "copy", "--to", "swarm", "big.bin")
	checkGrowth(t, laptop, "git annex copy --to swarm", before, size)
	r.run("git", "annex", "drop", "big.bin")

	before = homeBytes(t, laptop)
	r.run("git", "annex", "get", "--from", "swarm", "big.bin")
	checkGrowth(t, laptop, "git annex get --from swarm", before, size)
	r.run("git", "annex", "fsck", "big.bin")
	if st := laptop.StatusJSON().Store; st.Chunks != 0 {
		t.Errorf("the client's store holds %d chunks, want none", st.Chunks)
	}
}
