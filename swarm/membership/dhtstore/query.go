package dhtstore

import (
	"bytes"
	"context"
	"path"

	dsq "github.com/ipfs/go-datastore/query"
	bolt "go.etcd.io/bbolt"
)

// pageSize is how many entries one read transaction of a query copies out.
// A query never holds a read transaction while its caller works: kad-dht's
// provider GC deletes (in write transactions of the same goroutine) while it
// walks "/providers", and a bbolt writer that must grow the file waits for
// every open reader, so a reader held across the walk could deadlock it.
const pageSize = 256

// Query streams the entries under q.Prefix in key order, a page at a time,
// through go-datastore's naive filters, orders, offset and limit. Only the
// prefix is seeked; a query sorted by anything but the key holds all its
// matches in memory (dsq.NaiveOrder), as every go-datastore does.
//
// The pages are read in separate transactions, so a query sees writes that
// commit while it runs after its position, not a snapshot.
func (s *Datastore) Query(ctx context.Context, q dsq.Query) (dsq.Results, error) {
	p := &pager{s: s, prefix: []byte(queryPrefix(q.Prefix)), keysOnly: q.KeysOnly}
	naive := q
	naive.Prefix = "" // seeked
	if len(q.Orders) == 1 {
		if _, ok := q.Orders[0].(dsq.OrderByKey); ok {
			naive.Orders = nil // bbolt's byte order is the key order
		}
	}
	r := dsq.ResultsFromIterator(q, dsq.Iterator{Next: p.next, Close: func() error { p.buf, p.done = nil, true; return nil }})
	return dsq.NaiveQueryApply(naive, r), nil
}

// queryPrefix is the byte prefix of the keys a query prefix selects: the
// strict children of the cleaned prefix ("/a" selects "/a/b", not "/ab").
func queryPrefix(prefix string) string {
	if prefix == "" {
		return ""
	}
	if prefix[0] != '/' {
		prefix = "/" + prefix
	}
	prefix = path.Clean(prefix)
	if prefix == "/" {
		return ""
	}
	return prefix + "/"
}

// pager reads a query's entries a page at a time.
type pager struct {
	s        *Datastore
	prefix   []byte
	keysOnly bool
	after    []byte // the last key read; nil before the first page
	buf      []dsq.Result
	done     bool
}

func (p *pager) next() (dsq.Result, bool) {
	if len(p.buf) == 0 && !p.done {
		p.fill()
	}
	if len(p.buf) == 0 {
		return dsq.Result{}, false
	}
	r := p.buf[0]
	p.buf[0] = dsq.Result{}
	p.buf = p.buf[1:]
	return r, true
}

// fill reads the next page in a read transaction of its own.
func (p *pager) fill() {
	p.buf = p.buf[:0]
	err := p.s.view(func(b *bolt.Bucket) error {
		c := b.Cursor()
		var k, v []byte
		if p.after == nil {
			k, v = c.Seek(p.prefix)
		} else if k, v = c.Seek(p.after); k != nil && bytes.Equal(k, p.after) {
			k, v = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, p.prefix); k, v = c.Next() {
			e := dsq.Entry{Key: string(k), Size: len(v)}
			if !p.keysOnly {
				e.Value = bytes.Clone(v)
			}
			p.buf = append(p.buf, dsq.Result{Entry: e})
			if len(p.buf) == pageSize {
				p.after = bytes.Clone(k)
				return nil
			}
		}
		p.done = true
		return nil
	})
	if err == ErrDropped {
		p.buf, p.done = nil, true
		return
	}
	if err != nil {
		p.buf, p.done = []dsq.Result{{Error: err}}, true
	}
}
