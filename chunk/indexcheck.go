package chunk

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// This file implements the check of docs/STORE.md#checking-the-index-at-open:
// bbolt reads its file through mmap, so a page past the end of a truncated
// file is a SIGBUS, and a page that is not what its parent says is a panic.
// checkIndexFile reads the two meta pages with plain reads and refuses a file
// bbolt would fault on, before bbolt maps it.

// ErrIndexDamaged is wrapped by the error of Open when the index is
// damaged or missing next to stored objects. RebuildIndex repairs it.
var ErrIndexDamaged = errors.New("chunk: index damaged")

// bbolt's on-disk constants (go.etcd.io/bbolt/internal/common).
const (
	boltMagic        = 0xED0CDAED
	boltVersion      = 2
	boltPageHeader   = 16 // id u64, flags u16, count u16, overflow u32
	boltMetaSize     = 64 // magic .. checksum
	boltMetaSumAt    = 56 // the checksum covers the bytes before it
	boltNoFreelist   = ^uint64(0)
	boltBranchFlag   = 0x01
	boltLeafFlag     = 0x02
	boltFreelistFlag = 0x10
	boltMinPageSize  = 1024
	boltMaxPageSize  = 1024 << 14 // the largest bbolt looks for
)

// boltMeta is a decoded bbolt meta page.
type boltMeta struct {
	pageSize uint32
	root     uint64 // page of the root bucket
	freelist uint64 // page of the freelist, or boltNoFreelist
	pgid     uint64 // high-water mark: pages in use
	txid     uint64
}

// parseBoltMeta decodes a meta page (header included) and checks its magic,
// version, checksum and page size. b may be longer than a meta page.
func parseBoltMeta(b []byte) (boltMeta, error) {
	if len(b) < boltPageHeader+boltMetaSize {
		return boltMeta{}, fmt.Errorf("meta page of %d bytes", len(b))
	}
	m := b[boltPageHeader : boltPageHeader+boltMetaSize]
	le := binary.LittleEndian
	if le.Uint32(m[0:]) != boltMagic {
		return boltMeta{}, errors.New("no bbolt magic")
	}
	if v := le.Uint32(m[4:]); v != boltVersion {
		return boltMeta{}, fmt.Errorf("bbolt version %d", v)
	}
	h := fnv.New64a()
	h.Write(m[:boltMetaSumAt])
	if h.Sum64() != le.Uint64(m[boltMetaSumAt:]) {
		return boltMeta{}, errors.New("meta checksum mismatch")
	}
	meta := boltMeta{
		pageSize: le.Uint32(m[8:]),
		root:     le.Uint64(m[16:]),
		freelist: le.Uint64(m[32:]),
		pgid:     le.Uint64(m[40:]),
		txid:     le.Uint64(m[48:]),
	}
	ps := meta.pageSize
	if ps < boltMinPageSize || ps > boltMaxPageSize || ps&(ps-1) != 0 {
		return boltMeta{}, fmt.Errorf("page size %d", ps)
	}
	return meta, nil
}

// readAt reads len(b) bytes at off; a short read is an error.
func readAt(f io.ReaderAt, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// checkIndexFile checks that the bbolt file at path can be mapped without a
// fault: a valid meta page (the one bbolt will pick), a high-water mark
// within the file, and a root and freelist page of the right kind, inside
// the file. It reads at most four pages whatever the size of the index. A
// missing file is fs.ErrNotExist unwrapped by the caller.
func checkIndexFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	return checkBolt(f, st.Size())
}

// checkBolt is checkIndexFile on an open file of the given size.
func checkBolt(f io.ReaderAt, size int64) error {
	if size == 0 {
		return errors.New("empty file")
	}
	buf := make([]byte, boltPageHeader+boltMetaSize)
	var metas []boltMeta
	var errs []error
	if err := readAt(f, buf, 0); err != nil {
		errs = append(errs, fmt.Errorf("meta page 0: %w", err))
	} else if m, err := parseBoltMeta(buf); err != nil {
		errs = append(errs, fmt.Errorf("meta page 0: %w", err))
	} else {
		metas = append(metas, m)
	}
	// Meta page 1 sits one page in. With meta 0 bad, bbolt looks for it at
	// every possible page size; so does this.
	for ps := int64(boltMinPageSize); ps <= boltMaxPageSize && ps < size; ps <<= 1 {
		if len(metas) > 0 && ps != int64(metas[0].pageSize) {
			continue
		}
		if err := readAt(f, buf, ps); err != nil {
			errs = append(errs, fmt.Errorf("meta page 1: %w", err))
			break
		}
		m, err := parseBoltMeta(buf)
		if err == nil && int64(m.pageSize) == ps {
			metas = append(metas, m)
			break
		}
		if len(metas) > 0 {
			errs = append(errs, fmt.Errorf("meta page 1: %v", err))
		}
	}
	if len(metas) == 0 {
		return fmt.Errorf("no valid meta page: %w", errors.Join(errs...))
	}
	// bbolt uses the meta with the higher transaction id if it is valid.
	m := metas[0]
	if len(metas) == 2 && metas[1].txid > m.txid {
		m = metas[1]
	}
	return checkPages(f, size, m)
}

// checkPages checks the pages one meta names against the file.
func checkPages(f io.ReaderAt, size int64, m boltMeta) error {
	ps := int64(m.pageSize)
	if m.pgid < 2 || m.pgid > uint64(size/ps) {
		return fmt.Errorf("high-water mark of %d pages of %d bytes, file has %d bytes", m.pgid, ps, size)
	}
	if m.root < 2 || m.root >= m.pgid {
		return fmt.Errorf("root page %d outside 2..%d", m.root, m.pgid)
	}
	if m.freelist != boltNoFreelist && (m.freelist < 2 || m.freelist >= m.pgid) {
		return fmt.Errorf("freelist page %d outside 2..%d", m.freelist, m.pgid)
	}
	check := func(what string, pg uint64, ok func(flags uint16) bool) error {
		var h [boltPageHeader]byte
		if err := readAt(f, h[:], int64(pg)*ps); err != nil {
			return fmt.Errorf("%s page %d: %w", what, pg, err)
		}
		id := binary.LittleEndian.Uint64(h[0:])
		flags := binary.LittleEndian.Uint16(h[8:])
		overflow := binary.LittleEndian.Uint32(h[12:])
		if id != pg || !ok(flags) {
			return fmt.Errorf("%s page %d: header says page %d flags %#x", what, pg, id, flags)
		}
		if pg+uint64(overflow) >= m.pgid {
			return fmt.Errorf("%s page %d: %d overflow pages past the high-water mark %d", what, pg, overflow, m.pgid)
		}
		return nil
	}
	if err := check("root", m.root, func(fl uint16) bool { return fl == boltBranchFlag || fl == boltLeafFlag }); err != nil {
		return err
	}
	if m.freelist == boltNoFreelist {
		return nil
	}
	if err := check("freelist", m.freelist, func(fl uint16) bool { return fl == boltFreelistFlag }); err != nil {
		return err
	}
	return checkFreelist(f, m)
}

// checkFreelist checks that the page ids the freelist page lists fit in
// its pages: bbolt copies them from the mapping without a bound.
func checkFreelist(f io.ReaderAt, m boltMeta) error {
	ps := int64(m.pageSize)
	var h [boltPageHeader + 8]byte
	if err := readAt(f, h[:], int64(m.freelist)*ps); err != nil {
		return fmt.Errorf("freelist page %d: %w", m.freelist, err)
	}
	count := uint64(binary.LittleEndian.Uint16(h[10:]))
	start := uint64(boltPageHeader)
	if count == 0xFFFF { // the real count is the first element
		count = binary.LittleEndian.Uint64(h[boltPageHeader:])
		start += 8
	}
	room := (uint64(binary.LittleEndian.Uint32(h[12:])) + 1) * uint64(ps)
	if count > room/8 || start+count*8 > room {
		return fmt.Errorf("freelist page %d lists %d pages, more than it holds", m.freelist, count)
	}
	return nil
}
