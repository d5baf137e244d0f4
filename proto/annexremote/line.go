package annexremote

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
)

// Line framing, as specified in docs/ANNEX-REMOTE.md section "Lines".

// MaxLineBytes bounds one protocol line read from git-annex, without its
// line ending. git-annex sends keys and file names; 64 KiB is far above any
// path a file system accepts.
const MaxLineBytes = 64 << 10

// maxMessageBytes bounds free text (error messages, INFO values) that the
// remote puts in one line it sends.
const maxMessageBytes = 4 << 10

// Sentinel errors of the line layer.
var (
	// ErrLineTooLong is returned by LineReader.ReadLine when a line is longer
	// than the reader's bound. The stream is then out of sync and MUST be
	// abandoned.
	ErrLineTooLong = errors.New("annexremote: line too long")
	// ErrBadLine is returned by LineWriter.WriteLine for a line that contains
	// a line break, which would split it into two protocol lines.
	ErrBadLine = errors.New("annexremote: line contains a line break")
)

// LineReader reads protocol lines with a hard bound on their length.
//
// A line ends at "\n"; one "\r" before it is stripped. The last line of the
// stream may lack its "\n".
type LineReader struct {
	br  *bufio.Reader
	max int
}

// NewLineReader returns a LineReader on r that refuses lines longer than max
// bytes (MaxLineBytes when max <= 0). Its buffer holds one line of max bytes.
func NewLineReader(r io.Reader, max int) *LineReader {
	if max <= 0 {
		max = MaxLineBytes
	}
	// Room for the line, "\r" and "\n"; bufio's minimum is 16.
	return &LineReader{br: bufio.NewReaderSize(r, max+2), max: max}
}

// ReadLine returns the next line without its line ending. At the end of the
// stream it returns io.EOF; a line longer than the bound is ErrLineTooLong.
func (lr *LineReader) ReadLine() (string, error) {
	b, err := lr.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("reading line: more than %d bytes: %w", lr.max, ErrLineTooLong)
	case errors.Is(err, io.EOF):
		if len(b) == 0 {
			return "", io.EOF
		}
	case err != nil:
		return "", fmt.Errorf("reading line: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	b = bytes.TrimSuffix(b, []byte{'\r'})
	if len(b) > lr.max {
		return "", fmt.Errorf("reading line: more than %d bytes: %w", lr.max, ErrLineTooLong)
	}
	return string(b), nil
}

// flusher is implemented by buffered writers such as *bufio.Writer.
type flusher interface{ Flush() error }

// LineWriter writes whole protocol lines, one at a time, from any number of
// goroutines. Each line is written with a single Write call and flushed when
// the underlying writer is buffered, so git-annex sees it at once.
//
// After the first write error every later WriteLine returns that error.
type LineWriter struct {
	mu  sync.Mutex
	w   io.Writer
	err error
	buf []byte
}

// NewLineWriter returns a LineWriter on w.
func NewLineWriter(w io.Writer) *LineWriter { return &LineWriter{w: w} }

// WriteLine writes line followed by "\n". A line containing "\n" or "\r" is
// refused with ErrBadLine and nothing is written.
func (lw *LineWriter) WriteLine(line string) error {
	if strings.ContainsAny(line, "\r\n") {
		return fmt.Errorf("writing line %.40q: %w", line, ErrBadLine)
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.err != nil {
		return lw.err
	}
	lw.buf = append(append(lw.buf[:0], line...), '\n')
	if _, err := lw.w.Write(lw.buf); err != nil {
		lw.err = fmt.Errorf("writing line: %w", err)
		return lw.err
	}
	if f, ok := lw.w.(flusher); ok {
		if err := f.Flush(); err != nil {
			lw.err = fmt.Errorf("flushing line: %w", err)
			return lw.err
		}
	}
	return nil
}

// oneLine makes free text safe to put at the end of a protocol line: line
// breaks become spaces, and the text is cut to maxMessageBytes (on a UTF-8
// boundary when the text is UTF-8).
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
	if len(s) > maxMessageBytes {
		cut := maxMessageBytes
		for cut > maxMessageBytes-4 && cut > 0 && s[cut]&0xc0 == 0x80 {
			cut--
		}
		s = s[:cut]
	}
	return s
}
