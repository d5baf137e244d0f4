package annexremote

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// FuzzReadLine reads lines from arbitrary bytes with a small bound: every
// line is within the bound and has no line break, and when the input holds
// no "\r" the lines joined by "\n" give back the input read so far.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("VERSION 1\nEXTENSIONS INFO\n"))
	f.Add([]byte("A\r\nB"))
	f.Add([]byte("\n\n\r\n"))
	f.Add([]byte(strings.Repeat("x", 65) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		const max = 64
		lr := NewLineReader(bytes.NewReader(data), max)
		var lines []string
		var err error
		for range len(data) + 1 { // every line consumes at least one byte
			var l string
			if l, err = lr.ReadLine(); err != nil {
				break
			}
			if len(l) > max || strings.ContainsRune(l, '\n') {
				t.Fatalf("line %q breaks the bounds", l)
			}
			lines = append(lines, l)
		}
		if err == nil {
			t.Fatal("more lines than bytes")
		}
		if !errors.Is(err, io.EOF) && !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("unexpected error %v", err)
		}
		if errors.Is(err, io.EOF) && !bytes.ContainsRune(data, '\r') {
			if got := strings.Join(lines, "\n"); got != strings.TrimSuffix(string(data), "\n") {
				t.Fatalf("lines %q do not give back %q", lines, data)
			}
		}
	})
}

// FuzzParseRequest checks that an accepted line formats back to itself (but
// for the space after a bare command word, which carries nothing) and that
// the parts are within their rules.
func FuzzParseRequest(f *testing.F) {
	f.Add("TRANSFER STORE SHA256E-s1--k a file with  spaces")
	f.Add("J 7 CHECKPRESENT K")
	f.Add("J 01 PREPARE")
	f.Add("VALUE ")
	f.Add("J 2147483647 GETCOST")
	f.Fuzz(func(t *testing.T, line string) {
		r, err := ParseRequest(line)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !validName(r.Name) || r.Job < 0 || r.Job > MaxJobID {
			t.Fatalf("accepted %+v", r)
		}
		s := r.String()
		if s != line && s+" " != line {
			t.Fatalf("%q formats back as %q", line, s)
		}
		r2, err := ParseRequest(s)
		if err != nil || r2 != r {
			t.Fatalf("%q re-parses as %+v, %v; want %+v", s, r2, err, r)
		}
	})
}

// FuzzServe feeds arbitrary input to Serve: it must return, and write only
// whole lines.
func FuzzServe(f *testing.F) {
	f.Add([]byte("EXTENSIONS ASYNC INFO\nJ 1 PREPARE\nJ 1 VALUE /h\nJ 2 GETCOST\n"))
	f.Add([]byte("PREPARE\nVALUE /h\nTRANSFER STORE K a b\nCHECKPRESENT K\n"))
	f.Add([]byte("INITREMOTE\nVALUE \nERROR x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b := newMemBackend()
		close(b.release) // never block
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var out syncBuffer
		err := Serve(ctx, bytes.NewReader(data), &out, b, Options{WorkDir: "/w", ProgressInterval: time.Hour, MaxJobs: 8})
		if ctx.Err() != nil {
			t.Fatalf("Serve hung: %v", err)
		}
		o := out.String()
		if !strings.HasPrefix(o, "VERSION 1\n") || !strings.HasSuffix(o, "\n") {
			t.Fatalf("output %q", o)
		}
	})
}
