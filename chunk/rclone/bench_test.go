package rclone_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/chunktest"
	"github.com/annex-swarm/annex-swarm/chunk/rclone"
	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
)

// benchSize is the file each iteration moves.
const benchSize = 32 << 20

// BenchmarkCloud measures put and get through a store over rclone serve
// webdav beside `rclone copy` and `rclone cat` of the same bytes to and
// from the same server, in one run (docs/PERFORMANCE.md). Run with
// -benchtime=3x.
func BenchmarkCloud(b *testing.B) {
	w := rclonetest.Start(b)
	ctx := context.Background()
	be, err := rclone.Start(ctx, rclone.Options{Remote: rclonetest.RemoteName + ":store", Config: w.Config})
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	s, err := chunk.Open(b.TempDir(), chunk.Options{Backend: be})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	src := filepath.Join(b.TempDir(), "file")
	seed := uint64(1000)
	write := func() []byte {
		seed++
		data := chunktest.Content(seed, benchSize)
		if err := os.WriteFile(src, data, 0o644); err != nil {
			b.Fatal(err)
		}
		return data
	}
	rc := func(args ...string) {
		out, err := exec.Command("rclone", append([]string{"--config", w.Config}, args...)...).CombinedOutput()
		if err != nil {
			b.Fatalf("rclone %v: %v: %s", args, err, out)
		}
	}
	b.Run("put", func(b *testing.B) {
		b.SetBytes(benchSize)
		for range b.N {
			b.StopTimer()
			data := write()
			b.StartTimer()
			if _, _, err := s.Put(ctx, bytes.NewReader(data), benchSize, ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rclone-copy", func(b *testing.B) {
		b.SetBytes(benchSize)
		for i := range b.N {
			b.StopTimer()
			write()
			b.StartTimer()
			rc("copy", src, fmt.Sprintf("%s:copy/%d", rclonetest.RemoteName, i))
		}
	})
	data := write()
	root, _, err := s.Put(ctx, bytes.NewReader(data), benchSize, "")
	if err != nil {
		b.Fatal(err)
	}
	rc("copy", src, rclonetest.RemoteName+":cat")
	b.Run("get", func(b *testing.B) {
		b.SetBytes(benchSize)
		for range b.N {
			if _, err := s.WriteTo(ctx, root, io.Discard); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("rclone-cat", func(b *testing.B) {
		b.SetBytes(benchSize)
		for range b.N {
			cmd := exec.Command("rclone", "--config", w.Config, "cat", rclonetest.RemoteName+":cat/file")
			cmd.Stdout = io.Discard
			if err := cmd.Run(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
