package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/rules"
)

// A client member's put (docs/STORE.md "What a client member keeps"): the
// file is never copied into the store. Its manifest is computed once and
// recorded, the exchange serves each chunk from the file at its offset,
// verified against its CID (exchange.ServeFile), and a reference record
// (path, size, modification time) in HOME/nocopy says which manifest to
// drop should the daemon die during the put. When the put ends, the
// manifest and the record go.

// nocopyDir holds the reference records of the puts served from files.
func (d *Daemon) nocopyDir() string { return filepath.Join(d.home.Dir, "nocopy") }

// maxNocopyRef bounds a reference record file.
const maxNocopyRef = 8 << 10

// nocopyRef is the reference record of a put served from a file.
type nocopyRef struct {
	Root  string    `json:"root"`
	Path  string    `json:"path"`
	Size  int64     `json:"size"`
	MTime time.Time `json:"mtime"`
	// Added is set when the put recorded the manifest (it was not held
	// before): the manifest is removed when the put ends.
	Added bool `json:"added"`
}

// parseNocopyRef decodes a reference record.
func parseNocopyRef(b []byte) (nocopyRef, error) {
	var r nocopyRef
	if len(b) > maxNocopyRef {
		return r, fmt.Errorf("reference record of %d bytes, over %d", len(b), maxNocopyRef)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("decoding reference record: %w", err)
	}
	id, err := chunk.ParseCID(r.Root)
	if err != nil || !chunk.IsManifestCID(id) {
		return r, fmt.Errorf("reference record names %q, not a manifest CID", r.Root)
	}
	return r, nil
}

// isClient reports whether this daemon is a client member of the adopted swarm.
func (d *Daemon) isClient() bool {
	def := d.members.Current()
	if def == nil {
		return false
	}
	m, ok := def.Member(rules.PeerID(d.host.ID()))
	return ok && m.Role == rules.RoleClient
}

// putsFromFile reports whether a put of size bytes is served from its file:
// on a client member, for a replicated content too large to travel inline
// (a small one is stored and placed inside the PlaceRequest as before).
func (d *Daemon) putsFromFile(size int64) bool {
	def := d.members.Current()
	return d.isClient() && size > proto.MaxInlineSize && !def.Replication.Coded(size)
}

// putFromFile puts f (opened from req.Path, fi its state) without copying
// it into the store.
func (d *Daemon) putFromFile(ctx context.Context, req client.PutRequest, f *os.File, fi fs.FileInfo, progress func(client.Progress)) (client.PutResult, error) {
	fail := func(err error) (client.PutResult, error) {
		return client.PutResult{}, fmt.Errorf("put %s: %w", req.Path, err)
	}
	cr := &countingReader{r: io.NewSectionReader(f, 0, fi.Size()), total: fi.Size(), progress: progress}
	m, err := chunk.ManifestOf(ctx, cr, d.store.Params(), req.Key)
	if err != nil {
		return fail(err)
	}
	enc, err := m.Encode()
	if err != nil {
		return fail(err)
	}
	root := chunk.ManifestCID(enc)
	res := client.PutResult{CID: root.String(), Size: m.Size}
	// One put of a content at a time: a second one (the same file twice
	// in a bulk put) finds the holders done when its turn comes.
	unlock, err := d.fromFile.lock(ctx, root.KeyString())
	if err != nil {
		return fail(err)
	}
	defer unlock()
	if missing, err := d.store.Missing(ctx, root); err == nil && len(missing) == 0 {
		// Held here in full already: seed it from the store.
		d.announce(root)
		if res.Copies, err = d.seed(ctx, root, progress); err != nil {
			return fail(err)
		}
		return res, nil
	}
	_, err = d.store.Manifest(ctx, root)
	held := err == nil
	if err != nil && !errors.Is(err, chunk.ErrNotFound) {
		return fail(err)
	}
	ref := nocopyRef{Root: root.String(), Path: req.Path, Size: fi.Size(), MTime: fi.ModTime(), Added: !held}
	done, err := d.recordNocopy(ctx, root, m, ref)
	if err != nil {
		return fail(err)
	}
	defer done()
	fc, err := d.xchg.ServeFile(root, m, f)
	if err != nil {
		return fail(err)
	}
	defer fc.Close()
	if now, err := f.Stat(); err != nil || now.Size() != fi.Size() || !now.ModTime().Equal(fi.ModTime()) || m.Size != fi.Size() {
		return fail(fmt.Errorf("the file changed while its chunks were listed"))
	}
	d.log.Info("content served from its file", "cid", root, "size", m.Size, "key", req.Key, "path", req.Path)
	seedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-fc.Failed():
			cancel()
		case <-seedCtx.Done():
		}
	}()
	res.Copies, err = d.seed(seedCtx, root, progress)
	if ferr := fc.Err(); ferr != nil {
		return fail(ferr)
	}
	if err != nil {
		return fail(err)
	}
	return res, nil
}

// rootLocks are locks by content.
type rootLocks struct {
	mu   sync.Mutex
	busy map[string]chan struct{}
}

// lock takes the lock of key, waiting for it until ctx ends.
func (l *rootLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	for {
		l.mu.Lock()
		if l.busy == nil {
			l.busy = map[string]chan struct{}{}
		}
		held, ok := l.busy[key]
		if !ok {
			ch := make(chan struct{})
			l.busy[key] = ch
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.busy, key)
				l.mu.Unlock()
				close(ch)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-held:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for another put of the same content: %w", ctx.Err())
		}
	}
}

// recordNocopy writes the reference record of root, then records its
// manifest (unless held); done removes both.
func (d *Daemon) recordNocopy(ctx context.Context, root cid.Cid, m *chunk.Manifest, ref nocopyRef) (done func(), err error) {
	b, err := json.Marshal(ref)
	if err != nil {
		return nil, fmt.Errorf("encoding the reference record: %w", err)
	}
	if err := os.MkdirAll(d.nocopyDir(), 0o700); err != nil {
		return nil, fmt.Errorf("writing the reference record: %w", err)
	}
	path := filepath.Join(d.nocopyDir(), root.String())
	if err := WriteFileAtomic(path, b, 0o600); err != nil {
		return nil, fmt.Errorf("writing the reference record: %w", err)
	}
	drop := func() {
		if err := d.dropNocopy(path, ref); err != nil {
			d.log.Warn("dropping a put's reference record", "cid", root, "err", err)
		}
	}
	if ref.Added {
		if _, err := d.store.PutManifest(ctx, m); err != nil {
			drop()
			return nil, err
		}
	}
	return drop, nil
}

// dropNocopy removes the manifest a put served from a file recorded (when
// it still lacks chunks) and then the reference record at path.
func (d *Daemon) dropNocopy(path string, ref nocopyRef) error {
	if ref.Added {
		root, err := chunk.ParseCID(ref.Root)
		if err != nil {
			return err
		}
		ctx := context.Background()
		missing, err := d.store.Missing(ctx, root)
		if err == nil && len(missing) > 0 {
			err = d.store.Remove(ctx, root)
		}
		if err != nil && !errors.Is(err, chunk.ErrNotFound) {
			return fmt.Errorf("removing manifest %s: %w", root, err)
		}
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// dropStaleNocopy drops what puts served from files left when the daemon
// stopped during them (their manifests and records).
func (d *Daemon) dropStaleNocopy() {
	ents, err := os.ReadDir(d.nocopyDir())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			d.log.Warn("listing reference records", "err", err)
		}
		return
	}
	for _, e := range ents {
		path := filepath.Join(d.nocopyDir(), e.Name())
		b, err := readBounded(path, maxNocopyRef)
		var ref nocopyRef
		if err == nil {
			ref, err = parseNocopyRef(b)
		}
		if err != nil {
			d.log.Warn("unreadable reference record removed", "path", path, "err", err)
			_ = os.Remove(path)
			continue
		}
		if err := d.dropNocopy(path, ref); err != nil {
			d.log.Warn("dropping a stale reference record", "path", path, "err", err)
			continue
		}
		d.log.Info("a put served from a file ended with the daemon; its manifest dropped", "cid", ref.Root, "path", ref.Path)
	}
}
