package chunk

import (
	"errors"
	"fmt"
	"io"
	"math/bits"
)

// MaxChunkSize is the largest chunk any manifest may describe and the
// largest Params.Max a chunker accepts (docs/MANIFEST.md#chunking).
const MaxChunkSize = 4 << 20

// minChunkFloor is the smallest Params.Min accepted. Below it the gear hash
// window (64 bytes) would dominate and manifests would explode in size.
const minChunkFloor = 64

// Params are the content-defined chunking parameters: no chunk is shorter than
// Min (except the last one of a stream) or longer than Max, and the typical
// chunk is a little over Avg. Avg must be a power of two.
type Params struct {
	Min, Avg, Max int
}

// DefaultParams are the parameters every annex-swarm host uses. Changing them
// changes every chunk boundary and so defeats deduplication against content
// stored before the change.
var DefaultParams = Params{Min: 256 << 10, Avg: 1 << 20, Max: 4 << 20}

// ErrBadParams is returned for chunking parameters outside the rules of Params.
var ErrBadParams = errors.New("chunk: invalid chunking parameters")

// Validate reports whether p can be used by a Chunker.
func (p Params) Validate() error {
	switch {
	case p.Min < minChunkFloor:
		return fmt.Errorf("%w: min %d < %d", ErrBadParams, p.Min, minChunkFloor)
	case p.Avg&(p.Avg-1) != 0:
		return fmt.Errorf("%w: avg %d is not a power of two", ErrBadParams, p.Avg)
	case !(p.Min < p.Avg && p.Avg < p.Max):
		return fmt.Errorf("%w: want min < avg < max, have %d, %d, %d", ErrBadParams, p.Min, p.Avg, p.Max)
	case p.Max > MaxChunkSize:
		return fmt.Errorf("%w: max %d > %d", ErrBadParams, p.Max, MaxChunkSize)
	case bits.TrailingZeros(uint(p.Avg)) < 8:
		return fmt.Errorf("%w: avg %d < 256", ErrBadParams, p.Avg)
	}
	return nil
}

// Chunker splits a stream into content-defined chunks with a gear rolling
// hash and FastCDC's normalized chunking: below Avg a boundary needs two more
// zero hash bits than the average would, above Avg two fewer, which narrows
// the spread of chunk sizes around Avg.
//
// A Chunker holds one buffer of at most 2*Max bytes and never reads more of
// the stream than that ahead. The buffer starts small and doubles while the
// stream fills it, so that chunking a small content does not allocate (and
// clear) megabytes. It is not safe for concurrent use.
type Chunker struct {
	r       io.Reader
	p       Params
	maskS   uint64 // top bits tested before Avg (harder)
	maskL   uint64 // top bits tested after Avg (easier)
	buf     []byte
	start   int // first unread byte of the current data in buf
	end     int // end of valid data in buf
	eof     bool
	readErr error
}

// initialBuffer is the size of a new Chunker's buffer.
const initialBuffer = 64 << 10

// NewChunker returns a Chunker reading r. It panics if p is invalid; use
// Params.Validate first for parameters from outside.
func NewChunker(r io.Reader, p Params) *Chunker {
	if err := p.Validate(); err != nil {
		panic(err)
	}
	b := bits.TrailingZeros(uint(p.Avg))
	return &Chunker{
		r:     r,
		p:     p,
		maskS: ^uint64(0) << (64 - (b + 2)),
		maskL: ^uint64(0) << (64 - (b - 2)),
		buf:   make([]byte, min(initialBuffer, 2*p.Max)),
	}
}

// Next returns the next chunk, or io.EOF after the last one. An empty stream
// yields no chunk at all. The returned slice aliases the Chunker's buffer: it
// is valid only until the next call to Next, and the caller must copy it to
// keep it.
func (c *Chunker) Next() ([]byte, error) {
	if c.end-c.start < c.p.Max && !c.eof {
		if err := c.fill(); err != nil {
			return nil, err
		}
	}
	if c.start == c.end {
		return nil, io.EOF
	}
	n := c.cut(c.buf[c.start:c.end])
	chunk := c.buf[c.start : c.start+n]
	c.start += n
	return chunk, nil
}

// fill moves the unread tail to the front of the buffer and reads until
// 2*Max bytes are buffered or the stream ends, growing the buffer on the way.
func (c *Chunker) fill() error {
	if c.readErr != nil {
		return c.readErr
	}
	c.end = copy(c.buf, c.buf[c.start:c.end])
	c.start = 0
	for c.end < 2*c.p.Max {
		if c.end == len(c.buf) {
			buf := make([]byte, min(2*len(c.buf), 2*c.p.Max))
			copy(buf, c.buf[:c.end])
			c.buf = buf
		}
		n, err := c.r.Read(c.buf[c.end:])
		c.end += n
		if err == io.EOF {
			c.eof = true
			return nil
		}
		if err != nil {
			c.readErr = fmt.Errorf("reading content to chunk: %w", err)
			return c.readErr
		}
	}
	return nil
}

// cut returns the length of the chunk at the start of data, which holds at
// least Max bytes unless the stream ends within it.
//
// The gear hash is h = h<<1 + gear[b]; its top bits depend on the last 64
// bytes only. The loop rolls two bytes per step: h1 (after the first byte) is
// computed off the critical path, and h advances by both bytes with a single
// shift-and-add so the dependency chain is one operation per two bytes.
func (c *Chunker) cut(data []byte) int {
	n := len(data)
	if n <= c.p.Min {
		return n
	}
	if n > c.p.Max {
		n = c.p.Max
	}
	normal := c.p.Avg
	if normal > n {
		normal = n
	}
	data = data[:n]
	var h uint64
	i, ok := scan(data, c.p.Min, normal, &h, c.maskS)
	if ok {
		return i
	}
	// If (normal-Min)%8 != 0, the last bytes before normal are rolled with
	// the easier mask; that is part of the definition of the boundaries.
	if i, ok = scan(data, i, n, &h, c.maskL); ok {
		return i
	}
	return n
}

// scan rolls the hash over data[i:end] and returns the length of the chunk
// ending at the first boundary under mask. Otherwise it stores the hash in
// *hp and returns where it stopped, which is less than eight bytes before
// end.
//
// The fast loop takes eight bytes per step. With g = gear[b], the hash after
// one byte is 2h+g0 and after two 4h+(2g0+g1), so the dependency chain is one
// shift-and-add per two bytes. A boundary needs h&mask == 0; since
// (a&b)&mask != 0 rules out a boundary at both a and b, the hashes are tested
// in pairs, and the rare pair that passes the filter is re-scanned byte by
// byte to find the exact position.
func scan(data []byte, i, end int, hp *uint64, mask uint64) (int, bool) {
	h := *hp
	for ; i+8 <= end; i += 8 {
		b := (*[8]byte)(data[i : i+8])
		g0, g1, g2, g3 := gear[b[0]], gear[b[1]], gear[b[2]], gear[b[3]]
		g4, g5, g6, g7 := gear[b[4]], gear[b[5]], gear[b[6]], gear[b[7]]
		h1 := h<<1 + g0
		h2 := h<<2 + (g0<<1 + g1)
		h3 := h2<<1 + g2
		h4 := h2<<2 + (g2<<1 + g3)
		h5 := h4<<1 + g4
		h6 := h4<<2 + (g4<<1 + g5)
		h7 := h6<<1 + g6
		h8 := h6<<2 + (g6<<1 + g7)
		if (h1&h2)&mask == 0 || (h3&h4)&mask == 0 || (h5&h6)&mask == 0 || (h7&h8)&mask == 0 {
			if n, ok := scanSlow(b, h, mask); ok {
				return i + n, true
			}
		}
		h = h8
	}
	*hp = h
	return i, false
}

// scanSlow rolls h over b one byte at a time and returns the position after
// the first byte whose hash is a boundary.
func scanSlow(b *[8]byte, h, mask uint64) (int, bool) {
	for j, c := range b {
		h = h<<1 + gear[c]
		if h&mask == 0 {
			return j + 1, true
		}
	}
	return 0, false
}
