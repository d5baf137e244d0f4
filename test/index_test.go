package test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestIndexRebuiltAtStart damages a daemon's store index while it is
// stopped (truncated as in issue 10, emptied, deleted): the daemon starts,
// says in one log line that it rebuilt the index, and every content comes
// back byte for byte without any peer (no swarm joined). --rebuild-index
// rebuilds a sound index on request.
func TestIndexRebuiltAtStart(t *testing.T) {
	n := harness.New(t, bin, 1, harness.Options{}).Nodes[0]
	dir := t.TempDir()
	sizes := []int64{5 << 20, 300 << 10, 1}
	roots := make([]string, len(sizes))
	sums := make([][32]byte, len(sizes))
	for i, size := range sizes {
		src := filepath.Join(dir, "src"+string(rune('a'+i)))
		sums[i] = writeRandomFile(t, src, size, uint64(40+i))
		roots[i] = harness.LastLine(n.MustCLI("put", src))
	}
	index := filepath.Join(n.Home, "store", "index.db")
	cases := []struct {
		name    string
		damage  func() error
		args    []string
		logLine string
	}{
		{"truncated to 10000 bytes", func() error { return os.Truncate(index, 10000) }, nil, "store index damaged, rebuilt"},
		{"truncated to 0", func() error { return os.Truncate(index, 0) }, nil, "store index damaged, rebuilt"},
		{"deleted", func() error { return os.Remove(index) }, nil, "store index damaged, rebuilt"},
		{"sound, --rebuild-index", func() error { return nil }, []string{"--rebuild-index"}, "store index rebuilt on request"},
	}
	for i, tc := range cases {
		if err := n.Stop(); err != nil {
			t.Fatalf("%s: stopping: %v", tc.name, err)
		}
		if err := tc.damage(); err != nil {
			t.Fatal(err)
		}
		before := logLines(t, n, tc.logLine)
		saved := n.Args
		n.Args = append(append([]string(nil), saved...), tc.args...)
		err := n.Start()
		n.Args = saved
		if err != nil {
			t.Fatalf("%s: daemon did not start: %v", tc.name, err)
		}
		if got := logLines(t, n, tc.logLine); got != before+1 {
			t.Fatalf("%s: %d log lines %q, want 1:\n%s", tc.name, got-before, tc.logLine, n.LogTail(20))
		}
		if strings.Contains(n.LogTail(200), "goroutine ") {
			t.Fatalf("%s: a Go trace in the log:\n%s", tc.name, n.LogTail(40))
		}
		for j, root := range roots {
			out := filepath.Join(dir, "out", tc.name, roots[j])
			os.MkdirAll(filepath.Dir(out), 0o755)
			n.MustCLI("get", root, "-o", out)
			if fileSHA256(t, out) != sums[j] {
				t.Fatalf("%s: content %d differs after the rebuild", tc.name, j)
			}
		}
		if r := n.CLI("fsck"); r.Code != 0 {
			t.Fatalf("%s: fsck after the rebuild: exit %d: %s%s", tc.name, r.Code, r.Stdout, r.Stderr)
		}
		if i == 0 {
			kept, _ := filepath.Glob(index + ".damaged-*")
			if len(kept) != 1 {
				t.Fatalf("damaged index kept as %v, want one file", kept)
			}
		}
	}
}

// logLines counts the lines of the daemon log that contain s.
func logLines(t *testing.T, n *harness.Node, s string) int {
	t.Helper()
	b, err := os.ReadFile(n.LogPath())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Count(string(b), s)
}
