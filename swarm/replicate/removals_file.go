package replicate

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/annex-swarm/annex-swarm/proto"
)

// The removal records file (docs/REPLICATION.md "Removal records file").

// MaxRemovalFrames bounds the frames of the removal records file: records
// are appended as they come and the file is rewritten with the records
// held (at most MaxRemovals) before it would grow past this.
const MaxRemovalFrames = 2 * MaxRemovals

// encodeRemovals returns recs as frames of the records file
// (docs/REPLICATION.md "Removal records file").
func encodeRemovals(recs []*proto.Removal) ([]byte, error) {
	var buf bytes.Buffer
	fw := proto.NewFrameWriter(&buf, proto.FrameOverhead)
	for _, r := range recs {
		body, err := proto.EncodeMsg(r)
		if err != nil {
			return nil, fmt.Errorf("encoding removal of %s: %w", r.Root, err)
		}
		if err := fw.WriteFrame(body); err != nil {
			return nil, err
		}
	}
	if err := fw.Flush(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// DecodeRemovals parses a removal records file: at most MaxRemovalFrames
// frames, each one Removal message. On error it also returns the records
// read before the bad frame (a torn append leaves its last frame short).
func DecodeRemovals(b []byte) ([]*proto.Removal, error) {
	fr := proto.NewFrameReader(bytes.NewReader(b), proto.FrameOverhead)
	var out []*proto.Removal
	for {
		body, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("reading removal record %d: %w", len(out), err)
		}
		if len(out) == MaxRemovalFrames {
			return out, fmt.Errorf("reading removal records: more than %d", MaxRemovalFrames)
		}
		m, err := proto.DecodeMsg(body)
		if err != nil {
			return out, fmt.Errorf("reading removal record %d: %w", len(out), err)
		}
		rec, ok := m.(*proto.Removal)
		if !ok {
			return out, fmt.Errorf("reading removal record %d: a %s: %w", len(out), m.Type(), proto.ErrInvalid)
		}
		out = append(out, rec)
	}
}

// loadRemovals reads the durable records at start. A damaged file (a torn
// last append) keeps the records before the damage and is rewritten.
func (r *Replicator) loadRemovals() {
	if r.load == nil {
		return
	}
	b, err := r.load()
	if err != nil {
		r.log.Warn("reading removal records", "err", err)
		return
	}
	recs, err := DecodeRemovals(b)
	for _, rec := range recs {
		r.tombs.put(rec)
	}
	r.logMu.Lock()
	r.logged = len(recs)
	r.logMu.Unlock()
	if err != nil {
		r.log.Warn("reading removal records; keeping those before the damage", "kept", len(recs), "err", err)
		if err := r.persist(nil); err != nil {
			r.log.Warn("rewriting removal records", "err", err)
		}
	}
}

// persist makes recs (just kept in r.tombs) durable: appended to the
// records file, or, when that would take the file past MaxRemovalFrames
// (or recs is nil), by rewriting it with every record held.
func (r *Replicator) persist(recs []*proto.Removal) error {
	if r.save == nil {
		return nil
	}
	r.logMu.Lock()
	defer r.logMu.Unlock()
	if recs != nil && r.appendR != nil && r.logged+len(recs) <= MaxRemovalFrames {
		b, err := encodeRemovals(recs)
		if err != nil {
			return err
		}
		if err := r.appendR(b); err != nil {
			return fmt.Errorf("storing removal records: %w", err)
		}
		r.logged += len(recs)
		return nil
	}
	all := r.tombs.all()
	b, err := encodeRemovals(all)
	if err != nil {
		return err
	}
	if err := r.save(b); err != nil {
		return fmt.Errorf("storing removal records: %w", err)
	}
	r.logged = len(all)
	return nil
}
