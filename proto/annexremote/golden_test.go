package annexremote

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden transcripts in testdata/ with the actual output")

// A golden transcript (testdata/*.txt) holds one conversation:
//
//	> line git-annex sends to the remote
//	< line the remote sends to git-annex
//	= a call the Backend received (compared as a multiset, in any order)
//	! error TEXT   Serve must return an error containing TEXT
//	# comment
//
// Each "> " line is written once the remote has sent as many lines as there
// are "< " lines above it. Output is compared stream by stream: the lines of
// each async job "J n", and the un-prefixed lines, each in order; the order
// between jobs is free, as it is in the protocol.
type transcriptFile struct {
	steps     []step
	calls     []string
	wantError string
	comments  map[[2]int][]string // comment lines at (lines "<" before, lines ">" before), kept by -update
}

type step struct {
	in   string // a "> " line
	wait int    // number of "< " lines before it
	outs []string
}

func parseTranscript(t *testing.T, path string) (*transcriptFile, []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tf := &transcriptFile{comments: map[[2]int][]string{}}
	var outs []string
	for i, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "> "):
			tf.steps = append(tf.steps, step{in: l[2:], wait: len(outs)})
		case strings.HasPrefix(l, "< "):
			outs = append(outs, l[2:])
		case strings.HasPrefix(l, "= "):
			tf.calls = append(tf.calls, l[2:])
		case strings.HasPrefix(l, "! error "):
			tf.wantError = l[len("! error "):]
		case strings.HasPrefix(l, "#"):
			at := [2]int{len(outs), len(tf.steps)}
			tf.comments[at] = append(tf.comments[at], l)
		case l == "":
		default:
			t.Fatalf("%s:%d: line %q has no known prefix", path, i+1, l)
		}
	}
	return tf, outs
}

// streamOf returns the job stream a line belongs to: "J n" or "".
func streamOf(line string) string {
	if r, err := ParseRequest(line); err == nil && r.Job != 0 {
		return fmt.Sprintf("J %d", r.Job)
	}
	return ""
}

func byStream(lines []string) map[string][]string {
	m := map[string][]string{}
	for _, l := range lines {
		m[streamOf(l)] = append(m[streamOf(l)], l)
	}
	return m
}

// outputCollector gathers the remote's lines and lets the driver wait for a
// count of them.
type outputCollector struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // closed and replaced on every new line
}

func (c *outputCollector) add(l string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, l)
	close(c.more)
	c.more = make(chan struct{})
}

// waitFor waits until at least n lines arrived or the deadline passes.
func (c *outputCollector) waitFor(n int, deadline <-chan time.Time) bool {
	for {
		c.mu.Lock()
		got, more := len(c.lines), c.more
		c.mu.Unlock()
		if got >= n {
			return true
		}
		select {
		case <-more:
		case <-deadline:
			return false
		}
	}
}

func (c *outputCollector) snapshot() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

func TestGoldenTranscripts(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no transcripts in testdata: %v", err)
	}
	for _, path := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			runTranscript(t, path)
		})
	}
}

func runTranscript(t *testing.T, path string) {
	tf, wantOut := parseTranscript(t, path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	deadline := time.After(10 * time.Second)
	if *update {
		deadline = time.After(2 * time.Second)
	}

	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	b := newMemBackend()
	opts := Options{
		Configs:          []ConfigSetting{{Name: "home", Description: "annex-swarm home folder"}, {Name: "timeout", Description: "how long to wait"}},
		Cost:             175,
		WorkDir:          "/work/dir",
		ProgressInterval: time.Hour,
	}
	served := make(chan error, 1)
	go func() {
		err := Serve(ctx, inR, outW, b, opts)
		outW.Close()
		served <- err
	}()
	out := &outputCollector{more: make(chan struct{})}
	readDone := make(chan error, 1)
	go func() {
		lr := NewLineReader(outR, MaxLineBytes)
		for {
			l, err := lr.ReadLine()
			if err != nil {
				readDone <- err
				return
			}
			out.add(l)
		}
	}()

	for _, s := range tf.steps {
		if !out.waitFor(s.wait, deadline) && !*update {
			t.Fatalf("before sending %q: waited for %d lines, got:\n%s", s.in, s.wait, strings.Join(out.snapshot(), "\n"))
		}
		if _, err := io.WriteString(inW, s.in+"\n"); err != nil {
			if tf.wantError == "" {
				t.Fatalf("sending %q: %v", s.in, err)
			}
			break
		}
	}
	if !out.waitFor(len(wantOut), deadline) && !*update {
		t.Errorf("waited for %d lines", len(wantOut))
	}
	inW.Close()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
		t.Fatal("Serve did not return after its input was closed")
	}
	if err := <-readDone; !errors.Is(err, io.EOF) {
		t.Errorf("reading the output: %v", err)
	}
	got := out.snapshot()
	calls := b.recorded()
	slices.Sort(calls)

	if *update {
		writeTranscript(t, path, tf, got, calls, serveErr)
		return
	}
	switch {
	case tf.wantError == "" && serveErr != nil:
		t.Errorf("Serve: %v", serveErr)
	case tf.wantError != "" && (serveErr == nil || !strings.Contains(serveErr.Error(), tf.wantError)):
		t.Errorf("Serve returned %v, want an error containing %q", serveErr, tf.wantError)
	}
	wantStreams, gotStreams := byStream(wantOut), byStream(got)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		seen := map[string]bool{}
		for _, m := range []map[string][]string{wantStreams, gotStreams} {
			for k := range m {
				if !seen[k] {
					seen[k] = true
					if !yield(k) {
						return
					}
				}
			}
		}
	}) {
		if !slices.Equal(wantStreams[k], gotStreams[k]) {
			t.Errorf("stream %q:\n got: %q\nwant: %q", k, gotStreams[k], wantStreams[k])
		}
	}
	want := slices.Clone(tf.calls)
	slices.Sort(want)
	if !slices.Equal(calls, want) {
		t.Errorf("backend calls:\n got: %q\nwant: %q", calls, want)
	}
}

// writeTranscript rewrites a golden file from an actual run (-update): each
// "> " line keeps its place after the same number of "< " lines, the output
// lines are in the order they arrived, and comments keep their places.
func writeTranscript(t *testing.T, path string, tf *transcriptFile, got, calls []string, serveErr error) {
	var b strings.Builder
	nOut := 0
	comments := func(nIn int) {
		for _, c := range tf.comments[[2]int{nOut, nIn}] {
			b.WriteString(c + "\n")
		}
	}
	outTo := func(n, nIn int) {
		for ; nOut < min(n, len(got)); nOut++ {
			comments(nIn)
			b.WriteString("< " + got[nOut] + "\n")
		}
	}
	for i, s := range tf.steps {
		outTo(s.wait, i)
		comments(i)
		b.WriteString("> " + s.in + "\n")
	}
	outTo(len(got), len(tf.steps))
	comments(len(tf.steps))
	want := slices.Clone(tf.calls)
	slices.Sort(want)
	if slices.Equal(want, calls) {
		calls = tf.calls // same calls: keep the file's order
	}
	for _, c := range calls {
		b.WriteString("= " + c + "\n")
	}
	if tf.wantError != "" {
		b.WriteString("! error " + tf.wantError + "\n")
	} else if serveErr != nil {
		t.Logf("Serve returned %v (not recorded)", serveErr)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
