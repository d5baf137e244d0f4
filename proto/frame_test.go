package proto

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"testing"
)

func TestFrameRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 127, 128, 300, 16383, 16384, 70000}
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream, 1<<20)
	for i, n := range sizes {
		if err := fw.WriteFrame(testData(n, byte(i))); err != nil {
			t.Fatalf("writing frame of %d bytes: %v", n, err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(&stream, 1<<20)
	for i, n := range sizes {
		body, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading frame %d: %v", i, err)
		}
		if !bytes.Equal(body, testData(n, byte(i))) {
			t.Fatalf("frame %d: got %d bytes, want %d bytes of pattern %d", i, len(body), n, i)
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after the last frame: got %v, want io.EOF", err)
	}
}

// TestFrameHeader checks the length prefix against an independent encoder:
// unsigned LEB128, minimal.
func TestFrameHeader(t *testing.T) {
	for _, n := range []int{0, 1, 127, 128, 255, 16383, 16384, 1 << 20} {
		var stream bytes.Buffer
		fw := NewFrameWriter(&stream, 1<<21)
		if err := fw.WriteFrame(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		want := appendUvarintForTest(nil, uint64(n))
		if got := stream.Bytes()[:len(want)]; !bytes.Equal(got, want) || stream.Len() != len(want)+n {
			t.Errorf("frame of %d bytes: header %x (total %d), want %x (total %d)", n, got, stream.Len(), want, len(want)+n)
		}
	}
}

func TestFrameReadErrors(t *testing.T) {
	cases := []struct {
		name  string
		input []byte
		want  error
	}{
		{"empty stream", nil, io.EOF},
		{"truncated varint", []byte{0x80}, ErrTruncated},
		{"truncated body", []byte{10, 1, 2, 3, 4, 5}, ErrTruncated},
		{"body missing", []byte{1}, ErrTruncated},
		{"non-minimal varint", []byte{0x81, 0x00, 0x00}, ErrMalformed},
		{"zero padded varint", []byte{0x80, 0x00}, ErrMalformed},
		{"overlong varint", bytes.Repeat([]byte{0x80}, 10), ErrMalformed},
		{"over bound", appendUvarintForTest(nil, 1025), ErrFrameTooLarge},
		{"1<<40", appendUvarintForTest(nil, 1<<40), ErrFrameTooLarge},
		{"max uint63", appendUvarintForTest(nil, 1<<63-1), ErrFrameTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tc.input), 1024)
			_, err := fr.ReadFrame()
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if tc.want == io.EOF && err != io.EOF {
				t.Fatalf("clean end of stream must be io.EOF itself, got %#v", err)
			}
		})
	}
}

// TestFrameTooLargeDoesNotAllocate declares a 1 TiB frame and checks that
// refusing it allocates next to nothing.
func TestFrameTooLargeDoesNotAllocate(t *testing.T) {
	input := append(appendUvarintForTest(nil, 1<<40), 0x06, 0xa0)
	for _, read := range []struct {
		name string
		fn   func(r io.Reader) error
	}{
		{"FrameReader", func(r io.Reader) error {
			fr := NewFrameReader(r, MaxFrameSize)
			_, err := fr.ReadFrame()
			return err
		}},
		{"Codec", func(r io.Reader) error {
			_, err := NewCodec(struct {
				io.Reader
				io.Writer
			}{r, io.Discard}).Recv()
			return err
		}},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := read.fn(bytes.NewReader(input))
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrFrameTooLarge) {
			t.Fatalf("%s: got %v, want ErrFrameTooLarge", read.name, err)
		}
		// The reader's own 64 KiB buffers are allowed; a frame-sized one is not.
		if got := after.TotalAlloc - before.TotalAlloc; got > 256<<10 {
			t.Errorf("%s: refusing a 1 TiB frame allocated %d bytes", read.name, got)
		}
	}
}

func TestFrameWriterBuffersUntilFlush(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream, 1<<10)
	for i := range 3 {
		if err := fw.WriteFrame(testData(100, byte(i))); err != nil {
			t.Fatal(err)
		}
	}
	if stream.Len() != 0 {
		t.Fatalf("%d bytes reached the stream before Flush", stream.Len())
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if stream.Len() != 3*101 {
		t.Fatalf("after Flush the stream holds %d bytes, want %d", stream.Len(), 3*101)
	}
}

func TestFrameWriterBound(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream, 16)
	if err := fw.WriteFrame(make([]byte, 17)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	if stream.Len() != 0 {
		t.Fatalf("a refused frame wrote %d bytes", stream.Len())
	}
}

// TestFrameReaderReusesBuffer pins the documented contract: a body is valid
// until the next ReadFrame.
func TestFrameReaderReusesBuffer(t *testing.T) {
	var stream bytes.Buffer
	fw := NewFrameWriter(&stream, 64)
	for _, s := range []string{"first", "again"} {
		if err := fw.WriteFrame([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	fr := NewFrameReader(&stream, 64)
	first, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	second, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if string(second) != "again" || string(first) != "again" {
		t.Fatalf("got %q then %q; want the second frame in a reused buffer", first, second)
	}
}
