package dhtstore_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	ds "github.com/ipfs/go-datastore"

	"github.com/annex-swarm/annex-swarm/swarm/membership/dhtstore"
)

// writerEnv makes the test binary a writer that commits batches of records
// to the file it names until it is killed, printing the total committed
// after each batch.
const writerEnv = "DHTSTORE_TEST_WRITER"

// A kill -9 while batches are being committed leaves a file that opens
// without being replaced and holds at least every batch reported committed.
func TestKilledWriterLeavesAFileThatOpens(t *testing.T) {
	if path := os.Getenv(writerEnv); path != "" {
		runWriter(path)
		return
	}
	path := filepath.Join(t.TempDir(), "dht.db")
	committed := 0
	for round := range 5 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKilledWriterLeavesAFileThatOpens$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		for i := 0; i < 3+round*2 && lines.Scan(); i++ {
			n, err := strconv.Atoi(lines.Text())
			if err != nil {
				t.Fatalf("writer said %q", lines.Text())
			}
			committed = n
		}
		// The writer is in its next batch or commit now.
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()

		var logs bytes.Buffer
		db, err := dhtstore.Open(path, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatal(err)
		}
		n, err := db.Count("swarm-a")
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		if err != nil || logs.Len() > 0 || n < committed {
			t.Fatalf("round %d: %d records (%d committed), err %v, log:\n%s", round, n, committed, err, logs.String())
		}
		committed = n
	}
}

// runWriter commits batches of 256 records to path until killed.
func runWriter(path string) {
	ctx := context.Background()
	db, err := dhtstore.Open(path, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	s, err := db.Swarm("swarm-a")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	n, _ := db.Count("swarm-a")
	for i := 0; ; i++ {
		b, _ := s.Batch(ctx)
		for j := range 256 {
			_ = b.Put(ctx, ds.NewKey(fmt.Sprintf("/providers/%d-%d/%d", os.Getpid(), i, j)), bytes.Repeat([]byte{byte(j)}, 16))
		}
		if err := b.Commit(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		n += 256
		fmt.Println(n)
	}
}
