package chunk_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
)

const (
	crashDirEnv  = "CHUNK_CRASH_DIR"
	crashSeedEnv = "CHUNK_CRASH_SEED"
)

// crashContent is what the helper stores for a seed: half of it shared by
// every seed, so that manifests share chunks and Remove exercises refcounts.
func crashContent(seed int) []byte {
	size := 50_000 + seed*7919%400_000
	shared := chunktest.Content(99, size/2)
	return append(shared, chunktest.Content(uint64(seed), size-size/2)...)
}

// TestHelperProcess is the child of TestCrashAtomicity: it puts, removes and
// puts single chunks in a loop until it is killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("run by TestCrashAtomicity")
	}
	first, _ := strconv.Atoi(os.Getenv(crashSeedEnv))
	ctx := context.Background()
	s, err := chunk.Open(dir, chunk.Options{Chunking: chunktest.Params})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	var prev []byte
	for seed := first; seed < first+10_000; seed++ {
		data := crashContent(seed)
		key := fmt.Sprintf("WORM-s%d--seed%d", len(data), seed)
		root, _, err := s.Put(ctx, bytes.NewReader(data), int64(len(data)), key)
		if err != nil {
			t.Fatal(err)
		}
		if seed%3 == 0 && prev != nil {
			id, _ := chunk.ParseCID(string(prev))
			if err := s.Remove(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		if seed%4 == 0 {
			loose := chunktest.Content(uint64(seed)+1e6, 3000)
			if err := s.PutChunk(ctx, chunk.SumChunk(loose), loose); err != nil {
				t.Fatal(err)
			}
		}
		prev = []byte(root.String())
	}
}

// TestCrashAtomicity kills a child process doing writes with SIGKILL at
// random moments, then checks that the store opens, that Fsck finds no index
// entry without a valid chunk, and that every manifest reads back
// byte-identical.
func TestCrashAtomicity(t *testing.T) {
	if os.Getenv(crashDirEnv) != "" {
		t.Skip("in the helper")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	ctx := context.Background()
	total := 0
	for round := range 6 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashSeedEnv+"="+strconv.Itoa(round*10_000))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("round %d: helper did not start: %q %v", round, line, err)
		}
		// The random moment of the kill is the point of the test.
		<-time.After(time.Duration(50+rng.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil {
			t.Fatalf("round %d: helper finished before it was killed", round)
		}

		s, err := chunk.Open(dir, chunk.Options{Chunking: chunktest.Params})
		if err != nil {
			t.Fatalf("round %d: store does not open after kill: %v", round, err)
		}
		rep, err := s.Fsck(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Corrupt) > 0 || len(rep.Incomplete) > 0 || rep.Counters {
			t.Fatalf("round %d: after kill: %d corrupt, %d incomplete, counters wrong: %v",
				round, len(rep.Corrupt), len(rep.Incomplete), rep.Counters)
		}
		// Open removed what the kill left between an object file and its
		// index entry (chunk/recover.go).
		if len(rep.Orphans) > 0 {
			t.Fatalf("round %d: after kill and Open: %d orphaned files: %v", round, len(rep.Orphans), rep.Orphans)
		}
		roots, err := s.Manifests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, root := range roots {
			m, err := s.Manifest(ctx, root)
			if err != nil {
				t.Fatal(err)
			}
			var size, seed int
			if _, err := fmt.Sscanf(m.Key, "WORM-s%d--seed%d", &size, &seed); err != nil {
				t.Fatalf("manifest key %q: %v", m.Key, err)
			}
			var buf bytes.Buffer
			if _, err := s.WriteTo(ctx, root, &buf); err != nil {
				t.Fatalf("round %d: reading %s: %v", round, root, err)
			}
			if !bytes.Equal(buf.Bytes(), crashContent(seed)) {
				t.Fatalf("round %d: content of seed %d differs", round, seed)
			}
		}
		total = len(roots)
		if _, err := s.Fsck(ctx, true); err != nil {
			t.Fatal(err)
		}
		if rep, err := s.Fsck(ctx, false); err != nil || !rep.Clean() {
			t.Fatalf("round %d: fsck after repair: %+v %v", round, rep, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d manifests survive", total)
	if total == 0 {
		t.Fatal("the helper never completed a Put; the test proved nothing")
	}
}
