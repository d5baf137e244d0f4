package daemon

import (
	"hash"
	"io"
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

// hashingWriter writes to w and feeds h the same bytes, hashing each write
// on another goroutine while w writes it. Write returns once both are done
// with p, so the caller may reuse p.
type hashingWriter struct {
	w io.Writer
	h hash.Hash
}

func (hw hashingWriter) Write(p []byte) (int, error) {
	done := make(chan struct{})
	go func() {
		hw.h.Write(p) // hash.Hash never fails
		close(done)
	}()
	n, err := hw.w.Write(p)
	<-done
	return n, err
}

// oneLineError flattens an error to its first line.
func oneLineError(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
