package rclone_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
	"github.com/annex-swarm/annex-swarm/chunk/rclone"
	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
)

// accountFiles lists the files in the account's folder, relative to it.
func accountFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// TestPutGetRemoveFsck stores contents in the account, reads them back,
// removes one (its objects leave the account), and has fsck find a chunk
// corrupted in the account (quarantined there) and a stray object (removed
// with repair).
func TestPutGetRemoveFsck(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.RemoteName+":bucket/member1")
	s := openStore(t, t.TempDir(), b, 0)
	ctx := context.Background()
	contents := [][]byte{chunktest.Content(1, 300<<10), chunktest.Content(2, 100<<10), chunktest.Content(3, 1)}
	roots := make([]cid.Cid, len(contents))
	for i, c := range contents {
		roots[i] = put(t, s, c)
	}
	for i, c := range contents {
		get(t, s, roots[i], c)
	}
	account := filepath.Join(w.Dir, "bucket", "member1")
	if _, err := os.Stat(filepath.Join(account, chunk.ObjectName(chunk.ObjectManifest, roots[0]))); err != nil {
		t.Fatalf("manifest object not in the account: %v", err)
	}
	before := len(accountFiles(t, account))
	if err := s.Remove(ctx, roots[1]); err != nil {
		t.Fatal(err)
	}
	if after := len(accountFiles(t, account)); after >= before {
		t.Fatalf("remove left %d files in the account, had %d", after, before)
	}
	if _, err := os.Stat(filepath.Join(account, chunk.ObjectName(chunk.ObjectManifest, roots[1]))); !os.IsNotExist(err) {
		t.Fatalf("removed manifest's object still in the account: %v", err)
	}
	rep, err := s.Fsck(ctx, false)
	if err != nil || !rep.Clean() || rep.Checked == 0 {
		t.Fatalf("fsck of a sound store: %+v, %v", rep, err)
	}

	m, err := s.Manifest(ctx, roots[0])
	if err != nil {
		t.Fatal(err)
	}
	bad := m.Chunks[0].CID
	// Rot: the same length, other bytes.
	rot := filepath.Join(account, chunk.ObjectName(chunk.ObjectChunk, bad))
	orig, err := os.ReadFile(rot)
	if err != nil {
		t.Fatal(err)
	}
	orig[len(orig)/2] ^= 0x40
	if err := os.WriteFile(rot, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	stray := chunk.SumChunk([]byte("stray"))
	if err := b.Put(ctx, chunk.ObjectChunk, stray, []byte("stray")); err != nil {
		t.Fatal(err)
	}
	rep, err = s.Fsck(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Corrupt) != 1 || rep.Corrupt[0] != bad {
		t.Errorf("fsck found corrupt %v, want [%s]", rep.Corrupt, bad)
	}
	if len(rep.Orphans) != 1 || rep.Orphans[0] != chunk.ObjectName(chunk.ObjectChunk, stray) {
		t.Errorf("fsck found orphans %v, want the stray chunk", rep.Orphans)
	}
	if n, err := b.Quarantined(ctx); err != nil || n != 1 {
		t.Errorf("quarantined in the account: %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(filepath.Join(account, chunk.ObjectName(chunk.ObjectChunk, stray))); !os.IsNotExist(err) {
		t.Errorf("repair left the stray object: %v", err)
	}
	if _, err := s.WriteTo(ctx, roots[0], &bytes.Buffer{}); !errors.Is(err, chunk.ErrNotFound) {
		t.Errorf("reading content with a quarantined chunk: %v, want ErrNotFound", err)
	}
	get(t, s, roots[2], contents[2])
}

// TestLimit: the configured limit refuses what does not fit; the quota an
// account reports (an rclone "local" remote reports its disk) is the limit
// when it is the stricter.
func TestLimit(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.RemoteName+":limited")
	s := openStore(t, t.TempDir(), b, 400<<10)
	put(t, s, chunktest.Content(10, 300<<10))
	data := chunktest.Content(11, 200<<10)
	_, _, err := s.Put(context.Background(), bytes.NewReader(data), int64(len(data)), "")
	if !errors.Is(err, chunk.ErrNoSpace) {
		t.Fatalf("put over the limit: %v, want ErrNoSpace", err)
	}
	if st := s.Stats(); st.Limit != 400<<10 || st.Used > 400<<10 {
		t.Errorf("stats %+v", st)
	}

	disk := filepath.Join(t.TempDir(), "disk")
	conf := filepath.Join(t.TempDir(), "local.conf")
	if err := os.WriteFile(conf, []byte("[disk]\ntype = local\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lb, err := rclone.Start(ctx, rclone.Options{Remote: "disk:" + disk, Config: conf})
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Close()
	sp := lb.Space()
	if !sp.Known || sp.Free <= 0 || sp.Total < sp.Free {
		t.Fatalf("quota of a local remote: %+v, want it known", sp)
	}
	ls := openStore(t, t.TempDir(), lb, 1<<60)
	if got := ls.Stats().Limit; got != sp.Free {
		t.Errorf("limit %d with the account's %d free and 1 EiB configured, want the account's", got, sp.Free)
	}
	ls.SetLimit(1 << 20)
	if got := ls.Stats().Limit; got != 1<<20 {
		t.Errorf("limit %d with 1 MiB configured, want 1 MiB", got)
	}
}

// TestReplacementHost: the host fronting an account is lost; another host
// given the same remote rebuilds the index from the account's listing and
// reads every content back byte for byte.
func TestReplacementHost(t *testing.T) {
	w := rclonetest.Start(t)
	remote := rclonetest.RemoteName + ":bucket/member"
	b := startBackend(t, w, remote)
	old := openStore(t, t.TempDir(), b, 0)
	contents := [][]byte{chunktest.Content(20, 500<<10), chunktest.Content(21, 64<<10), chunktest.Content(22, 3)}
	roots := make([]cid.Cid, len(contents))
	for i, c := range contents {
		roots[i] = put(t, old, c)
	}
	old.Close()
	b.Close() // the host is gone: its folder and its rclone with it

	ctx := context.Background()
	nb := startBackend(t, w, remote)
	dir := t.TempDir()
	opts := chunk.Options{Backend: nb, Chunking: chunktest.Params}
	if _, err := chunk.Open(dir, opts); !errors.Is(err, chunk.ErrIndexDamaged) {
		t.Fatalf("opening a fresh index over a remote with objects: %v, want ErrIndexDamaged", err)
	}
	rep, err := chunk.RebuildIndex(ctx, dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Manifests != len(contents) || rep.Pinned != len(contents) || rep.Whole != len(contents) || len(rep.Corrupt) != 0 {
		t.Fatalf("rebuild: %+v", rep)
	}
	s := openStore(t, dir, nb, 0)
	for i, c := range contents {
		get(t, s, roots[i], c)
	}
	if fr, err := s.Fsck(ctx, false); err != nil || !fr.Clean() {
		t.Fatalf("fsck after the rebuild: %+v, %v", fr, err)
	}
}

// TestCrypt: a crypt remote over the webdav remote works unchanged, and
// the account holds neither the object names nor the content in clear.
func TestCrypt(t *testing.T) {
	w := rclonetest.Start(t)
	b := startBackend(t, w, rclonetest.CryptName+":member")
	dir := t.TempDir()
	s := openStore(t, dir, b, 0)
	data := chunktest.Content(30, 300<<10)
	root := put(t, s, data)
	get(t, s, root, data)
	files := accountFiles(t, w.Dir)
	if len(files) == 0 {
		t.Fatal("nothing in the account")
	}
	for _, f := range files {
		if strings.Contains(f, root.String()) || strings.Contains(f, "manifests") || strings.Contains(f, "chunks") {
			t.Errorf("account file %q names an object in clear", f)
		}
		b, err := os.ReadFile(filepath.Join(w.Dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 64 && bytes.Contains(data, b[len(b)/2:len(b)/2+64]) {
			t.Errorf("account file %q holds content in clear", f)
		}
	}
	s.Close()
	if err := os.Remove(filepath.Join(dir, "index.db")); err != nil {
		t.Fatal(err)
	}
	rep, err := chunk.RebuildIndex(context.Background(), dir, chunk.Options{Backend: b, Chunking: chunktest.Params})
	if err != nil || rep.Whole != 1 {
		t.Fatalf("rebuild from the crypt remote: %+v, %v", rep, err)
	}
	get(t, openStore(t, dir, b, 0), root, data)
}
