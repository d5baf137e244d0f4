package daemon

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// countingReader reports the bytes read through it.
type countingReader struct {
	r        io.Reader
	n, total int64
	progress func(client.Progress)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(client.Progress{Bytes: c.n, Total: c.total})
	}
	return n, err
}

// countingWriter reports the bytes written through it.
type countingWriter struct {
	w        io.Writer
	n, total int64
	progress func(client.Progress)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 {
		c.progress(client.Progress{Bytes: c.n, Total: c.total})
	}
	return n, err
}

// writeFileAtomicFunc writes path through a synced temp file in the same
// folder and renames it into place; on any error nothing is left behind.
func writeFileAtomicFunc(path string, fill func(io.Writer) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".part-*")
	if err != nil {
		return fmt.Errorf("creating temp file for %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	bw := bufio.NewWriterSize(f, 1<<20)
	if err := fill(bw); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp, err)
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return fmt.Errorf("setting mode of %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}
	return nil
}

// oneLineError flattens an error to its first line.
func oneLineError(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
