package proto

import (
	"io"
	"runtime"
	"testing"
)

// BenchmarkEncodeBlockResponse measures Codec.Send+Flush of a 1 MiB block
// into io.Discard; MB/s is payload throughput.
func BenchmarkEncodeBlockResponse(b *testing.B) {
	data := testData(1<<20, 1)
	m := &BlockResponse{ID: 1, CID: testCID(b, data), Data: data}
	c := NewCodec(struct {
		io.Reader
		io.Writer
	}{nil, io.Discard})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Send(m); err != nil {
			b.Fatal(err)
		}
		if err := c.Flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBlockResponse measures Codec.Recv of a 1 MiB block from an
// in-memory stream, with a fresh frame per message (the default) and with
// ReuseFrames; MB/s is payload throughput.
func BenchmarkDecodeBlockResponse(b *testing.B) {
	b.Run("fresh", func(b *testing.B) { benchmarkDecode(b) })
	b.Run("reuse", func(b *testing.B) { benchmarkDecode(b, ReuseFrames()) })
}

func benchmarkDecode(b *testing.B, opts ...CodecOption) {
	data := testData(1<<20, 1)
	body, err := EncodeMsg(&BlockResponse{ID: 1, CID: testCID(b, data), Data: data})
	if err != nil {
		b.Fatal(err)
	}
	frame := append(appendUvarintForTest(nil, uint64(len(body))), body...)
	c := NewCodec(struct {
		io.Reader
		io.Writer
	}{&repeatReader{data: frame}, io.Discard}, opts...)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := c.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if len(m.(*BlockResponse).Data) != len(data) {
			b.Fatal("short block")
		}
	}
}

// BenchmarkBaselineAllocCopy is the floor for a decoder that hands each
// 1 MiB block to its caller in a fresh buffer: one allocation and one copy.
func BenchmarkBaselineAllocCopy(b *testing.B) {
	src := testData(1<<20, 1)
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		buf := make([]byte, len(src))
		copy(buf, src)
		runtime.KeepAlive(buf)
	}
}

// BenchmarkBaselineCopy is memcpy of 1 MiB, the floor for ReuseFrames.
func BenchmarkBaselineCopy(b *testing.B) {
	src := testData(1<<20, 1)
	dst := make([]byte, len(src))
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		copy(dst, src)
	}
}
