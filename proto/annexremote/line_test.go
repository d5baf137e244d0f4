package annexremote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
)

func readAll(t *testing.T, lr *LineReader) ([]string, error) {
	t.Helper()
	var lines []string
	for range 10000 {
		l, err := lr.ReadLine()
		if err != nil {
			return lines, err
		}
		lines = append(lines, l)
	}
	t.Fatal("more than 10000 lines")
	return nil, nil
}

func TestLineReader(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		max      int
		want     []string
		wantErr  error
	}{
		{"plain", "A\nB b\n", 0, []string{"A", "B b"}, io.EOF},
		{"last line without newline", "A\nB", 0, []string{"A", "B"}, io.EOF},
		{"crlf", "A\r\nB\r\n", 0, []string{"A", "B"}, io.EOF},
		{"only one cr stripped", "A\r\r\n", 0, []string{"A\r"}, io.EOF},
		{"cr inside kept", "A\rB\n", 0, []string{"A\rB"}, io.EOF},
		{"empty lines", "\n\nA\n", 0, []string{"", "", "A"}, io.EOF},
		{"empty stream", "", 0, nil, io.EOF},
		{"exactly max", "12345678901234567890\n", 20, []string{"12345678901234567890"}, io.EOF},
		{"exactly max with crlf", "12345678901234567890\r\n", 20, []string{"12345678901234567890"}, io.EOF},
		{"exactly max last line", "12345678901234567890", 20, []string{"12345678901234567890"}, io.EOF},
		{"max plus one", "OK\n123456789012345678901\nX\n", 20, []string{"OK"}, ErrLineTooLong},
		{"max plus one last line", "123456789012345678901", 20, nil, ErrLineTooLong},
		{"very long", strings.Repeat("x", 3*MaxLineBytes), 0, nil, ErrLineTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(t, NewLineReader(strings.NewReader(tc.in), tc.max))
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v, want %v", err, tc.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) || len(got) != len(tc.want) {
				t.Errorf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLineReaderDefaultBound(t *testing.T) {
	in := strings.Repeat("y", MaxLineBytes) + "\n" + strings.Repeat("z", MaxLineBytes+1) + "\n"
	got, err := readAll(t, NewLineReader(strings.NewReader(in), 0))
	if len(got) != 1 || len(got[0]) != MaxLineBytes || !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("got %d lines, err %v; want one line of MaxLineBytes then ErrLineTooLong", len(got), err)
	}
}

type errWriter struct{ n int }

func (w *errWriter) Write(p []byte) (int, error) {
	w.n++
	return 0, errors.New("broken pipe")
}

func TestLineWriter(t *testing.T) {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	lw := NewLineWriter(bw)
	if err := lw.WriteLine("VERSION 1"); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "VERSION 1\n" {
		t.Fatalf("buffered writer not flushed after the line: %q", buf.String())
	}
	for _, bad := range []string{"A\nB", "A\r", "\n"} {
		if err := lw.WriteLine(bad); !errors.Is(err, ErrBadLine) {
			t.Errorf("WriteLine(%q) = %v, want ErrBadLine", bad, err)
		}
	}
	if buf.String() != "VERSION 1\n" {
		t.Fatalf("a refused line was written: %q", buf.String())
	}

	ew := &errWriter{}
	lw = NewLineWriter(ew)
	err1 := lw.WriteLine("A")
	err2 := lw.WriteLine("B")
	if err1 == nil || err2 == nil || ew.n != 1 {
		t.Fatalf("errors %v, %v after %d writes; want the first error kept, one write", err1, err2, ew.n)
	}
}

// TestLineWriterConcurrent writes from many goroutines and checks that no
// two lines were interleaved.
func TestLineWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	lw := NewLineWriter(&buf)
	const writers, each = 8, 200
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := lw.WriteLine(fmt.Sprintf("J %d PROGRESS %d %s", w+1, i, strings.Repeat("x", 100*w))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	lines, err := readAll(t, NewLineReader(&buf, 0))
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	next := map[int]int{}
	for _, l := range lines {
		var job, n int
		var pad string
		if _, err := fmt.Sscanf(l, "J %d PROGRESS %d %s", &job, &n, &pad); err != nil && !(job == 1 && pad == "") {
			t.Fatalf("mangled line %q: %v", l, err)
		}
		if n != next[job] || len(pad) != 100*(job-1) {
			t.Fatalf("line %q out of order or cut (want n=%d)", l, next[job])
		}
		next[job]++
	}
	if len(lines) != writers*each {
		t.Fatalf("%d lines, want %d", len(lines), writers*each)
	}
}

func TestOneLine(t *testing.T) {
	if got := oneLine("a\r\nb\nc\rd"); got != "a b c d" {
		t.Errorf("oneLine = %q", got)
	}
	long := strings.Repeat("é", maxMessageBytes) // 2 bytes each
	got := oneLine(long)
	if len(got) > maxMessageBytes || !strings.HasPrefix(long, got) || len(got)%2 != 0 {
		t.Errorf("cut to %d bytes, not on a rune boundary within %d", len(got), maxMessageBytes)
	}
}
