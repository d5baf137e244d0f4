package replicate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The repair state file (docs/REPLICATION.md "Repair state file"): what the
// repair rounds found of each content, kept across restarts so that a
// restart does not forget who holds what and survey everything again.

// ErrBadRepairState is returned for a repair state file that is not one
// (wrong magic, a bad checksum, a field out of bounds).
var ErrBadRepairState = errors.New("replicate: bad repair state file")

// Bounds of the repair state file.
const (
	// MaxRepairStateFile bounds the file read at start: about 60 bytes a
	// content, so 4,000,000 contents.
	MaxRepairStateFile = 256 << 20
	// maxStatePeers bounds the members named in the file.
	maxStatePeers = 4096
	// maxStateIDLen bounds one peer ID or CID in the file.
	maxStateIDLen = 128
)

// repairStateMagic starts the file; the last digit is the format version.
const repairStateMagic = "annex-swarm repair state 1\n"

// encodeKnown returns the repair state file for the known states, checked
// under rules version ver: the magic, the version, the members named (each
// a length and a peer ID), the contents (root, first check in Unix
// seconds, flags, holders as indexes into the members) and a CRC-32C of
// everything before it.
func encodeKnown(ver int64, known map[string]*knownState) []byte {
	peers := map[peer.ID]uint64{}
	var order []peer.ID
	for _, st := range known {
		for _, p := range st.holders {
			if _, ok := peers[p]; !ok {
				peers[p] = uint64(len(order))
				order = append(order, p)
			}
		}
	}
	b := make([]byte, 0, 64+len(known)*48)
	b = append(b, repairStateMagic...)
	b = binary.AppendVarint(b, ver)
	b = binary.AppendUvarint(b, uint64(len(order)))
	for _, p := range order {
		b = appendBytes(b, []byte(p))
	}
	b = binary.AppendUvarint(b, uint64(len(known)))
	for k, st := range known {
		b = appendBytes(b, []byte(k))
		b = binary.AppendVarint(b, st.first.Unix())
		flags := byte(st.level) & 3
		if st.settled {
			flags |= 4
		}
		b = append(b, flags)
		b = binary.AppendUvarint(b, uint64(len(st.holders)))
		for _, p := range st.holders {
			b = binary.AppendUvarint(b, peers[p])
		}
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crc32c))
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// DecodeRepairState parses a repair state file (at most MaxRepairStateFile
// bytes): the rules version it was written under and the known states by
// root key. A file damaged anywhere is refused whole.
func DecodeRepairState(b []byte) (ver int64, known map[string]*knownState, err error) {
	if len(b) > MaxRepairStateFile {
		return 0, nil, fmt.Errorf("%d bytes, more than %d: %w", len(b), MaxRepairStateFile, ErrBadRepairState)
	}
	if len(b) < len(repairStateMagic)+4 || !bytes.HasPrefix(b, []byte(repairStateMagic)) {
		return 0, nil, fmt.Errorf("no repair state header: %w", ErrBadRepairState)
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crc32c) != sum {
		return 0, nil, fmt.Errorf("checksum mismatch: %w", ErrBadRepairState)
	}
	d := stateDecoder{b: body[len(repairStateMagic):]}
	ver = d.varint()
	np := d.count(maxStatePeers)
	peers := make([]peer.ID, 0, np)
	for range np {
		id, err := peer.IDFromBytes(d.bytes())
		if err != nil && d.err == nil {
			d.err = fmt.Errorf("member %d: %v: %w", len(peers), err, ErrBadRepairState)
		}
		peers = append(peers, id)
	}
	// Each content takes at least 4 bytes: the count bounds the map.
	nc := d.count(uint64(len(d.b)) / 4)
	known = make(map[string]*knownState, nc)
	for range nc {
		root, err := cid.Cast(d.bytes())
		if err != nil && d.err == nil {
			d.err = fmt.Errorf("content %d: %v: %w", len(known), err, ErrBadRepairState)
		}
		first := d.varint()
		flags := d.byte()
		if flags&^7 != 0 || level(flags&3) > belowMin {
			d.fail("flags")
		}
		nh := d.count(uint64(len(peers)))
		st := &knownState{holders: make(holderSet, 0, nh), first: time.Unix(first, 0),
			level: level(flags & 3), settled: flags&4 != 0}
		for range nh {
			i := d.uvarint()
			if i >= uint64(len(peers)) {
				d.fail("holder index")
				break
			}
			st.holders = st.holders.add(peers[i])
		}
		if d.err != nil {
			return 0, nil, d.err
		}
		known[root.KeyString()] = st
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail("trailing bytes")
	}
	if d.err != nil {
		return 0, nil, d.err
	}
	return ver, known, nil
}

// stateDecoder reads the fields of a repair state file; the first error
// sticks and every later read returns zero.
type stateDecoder struct {
	b   []byte
	err error
}

func (d *stateDecoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s out of bounds: %w", what, ErrBadRepairState)
	}
	d.b = nil
}

func (d *stateDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("number")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *stateDecoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("flags")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// count reads a count of at most max.
func (d *stateDecoder) count(max uint64) uint64 {
	n := d.uvarint()
	if n > max {
		d.fail("count")
		return 0
	}
	return n
}

// bytes reads a length-prefixed field of at most maxStateIDLen bytes.
func (d *stateDecoder) bytes() []byte {
	n := d.uvarint()
	if n > maxStateIDLen || n > uint64(len(d.b)) {
		d.fail("field length")
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
