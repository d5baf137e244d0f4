package rclone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
)

// This file is the chunk.Backend over the remote-control calls.

// DefaultQuotaEvery is how often the quota is asked for and the remote
// probed when Options.QuotaEvery is zero.
const DefaultQuotaEvery = time.Minute

// Options configure a Backend.
type Options struct {
	// Remote is the rclone remote and path the objects live under,
	// "NAME:path".
	Remote string
	// Config is the rclone configuration file; "" means rclone's default.
	Config string
	// Binary is the rclone executable; "" means "rclone" in PATH.
	Binary string
	// QuotaEvery is how often the quota is read and a quiet remote probed.
	QuotaEvery time.Duration
	// Logger receives the backend's log; nil discards it.
	Logger *slog.Logger
}

// Backend keeps a store's objects in an rclone remote. It implements
// chunk.Backend.
type Backend struct {
	remote string
	rcd    *rcd
	log    *slog.Logger

	mu       sync.Mutex
	space    chunk.Space
	failing  int       // operations failed in a row, retries spent
	since    time.Time // when the first of them failed
	lastErr  error
	stop     chan struct{}
	finished chan struct{}
}

var _ chunk.Backend = (*Backend)(nil)

// Start runs rclone rcd for the remote, checks that the remote answers and
// reads its quota. Close stops it.
func Start(ctx context.Context, o Options) (*Backend, error) {
	if !strings.Contains(o.Remote, ":") {
		return nil, fmt.Errorf("rclone remote %q: want NAME:path", o.Remote)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "rclone", "remote", o.Remote)
	r, err := startRcd(o.Binary, o.Config, log)
	if err != nil {
		return nil, err
	}
	b := &Backend{remote: o.Remote, rcd: r, log: log, stop: make(chan struct{}), finished: make(chan struct{})}
	err = b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return call(ctx, ep, "operations/mkdir", map[string]any{"fs": b.remote, "remote": ""}, nil, maxReply)
	})
	if err == nil {
		err = b.probe(ctx)
	}
	if err != nil {
		r.close()
		return nil, fmt.Errorf("rclone remote %s: %w", o.Remote, err)
	}
	every := o.QuotaEvery
	if every <= 0 {
		every = DefaultQuotaEvery
	}
	go b.watch(every)
	return b, nil
}

// Close stops rclone.
func (b *Backend) Close() error {
	select {
	case <-b.stop:
		return nil
	default:
	}
	close(b.stop)
	<-b.finished
	b.rcd.close()
	return nil
}

// watch reads the quota (and so probes the remote) every period.
func (b *Backend) watch(every time.Duration) {
	defer close(b.finished)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		if err := b.probe(ctx); err != nil {
			b.log.Warn("probing the remote", "err", err)
		}
		cancel()
	}
}

// about is the reply of operations/about; absent fields are not reported.
type about struct {
	Total *int64 `json:"total"`
	Used  *int64 `json:"used"`
	Free  *int64 `json:"free"`
}

// probe reads the quota; a backend without one is probed with a listing.
func (b *Backend) probe(ctx context.Context) error {
	var a about
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return call(ctx, ep, "operations/about", map[string]any{"fs": b.remote}, &a, maxReply)
	})
	if err != nil && strings.Contains(err.Error(), "doesn't support") {
		err = b.do(ctx, func(ctx context.Context, ep endpoint) error {
			err := call(ctx, ep, "operations/list", map[string]any{"fs": b.remote, "remote": ""}, nil, maxListing)
			if notFound(err) {
				return nil
			}
			return err
		})
	}
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.space = spaceOf(a)
	b.mu.Unlock()
	return nil
}

// spaceOf turns what about reported into a chunk.Space; free is what
// counts, derived from total and used when only they are given.
func spaceOf(a about) chunk.Space {
	var sp chunk.Space
	switch {
	case a.Free != nil:
		sp.Known, sp.Free = true, max(*a.Free, 0)
	case a.Total != nil && a.Used != nil:
		sp.Known, sp.Free = true, max(*a.Total-*a.Used, 0)
	}
	if sp.Known {
		if a.Total != nil {
			sp.Total = *a.Total
		}
		if a.Used != nil {
			sp.Used = *a.Used
		}
	}
	return sp
}

// do runs one operation with retries and keeps the health count: a
// success clears it, a failure that is the remote's fault adds to it.
func (b *Backend) do(ctx context.Context, op func(ctx context.Context, ep endpoint) error) error {
	err := retry(ctx, op, b.rcd)
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case err == nil || notFound(err) || errors.Is(err, errTooLong):
		b.failing, b.lastErr = 0, nil
	case ctx.Err() != nil:
	default:
		if b.failing == 0 {
			b.since = time.Now()
		}
		b.failing++
		b.lastErr = err
	}
	return err
}

// Health returns an error wrapping chunk.ErrBackend once an operation
// failed after all its retries, until one succeeds again.
func (b *Backend) Health() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failing == 0 {
		return nil
	}
	return fmt.Errorf("%w: rclone remote %s: %d operations failed in a row since %s: %v",
		chunk.ErrBackend, b.remote, b.failing, b.since.UTC().Format(time.RFC3339), b.lastErr)
}

// Space returns the quota as last read.
func (b *Backend) Space() chunk.Space {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.space
}

// Put uploads the object and returns once rclone confirmed it.
func (b *Backend) Put(ctx context.Context, kind chunk.ObjectKind, id cid.Cid, data []byte) error {
	name := chunk.ObjectName(kind, id)
	dir, base := path.Split(name)
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return upload(ctx, ep, b.remote, strings.TrimSuffix(dir, "/"), base, data)
	})
	if err != nil {
		return fmt.Errorf("uploading %s: %w", name, err)
	}
	return nil
}

// Read downloads the object, at most limit bytes.
func (b *Backend) Read(ctx context.Context, kind chunk.ObjectKind, id cid.Cid, limit int64) ([]byte, error) {
	name := chunk.ObjectName(kind, id)
	var data []byte
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		var err error
		data, err = download(ctx, ep, b.remote, name, limit)
		return err
	})
	switch {
	case notFound(err):
		return nil, fmt.Errorf("reading %s: %w", name, chunk.ErrNotFound)
	case errors.Is(err, errTooLong):
		return nil, fmt.Errorf("reading %s: over %d bytes: %w", name, limit, chunk.ErrCorrupt)
	case err != nil && ctx.Err() == nil && b.stat(ctx, name) == nil:
		// The account answers but this object cannot be read whole: the
		// object is bad, not the account (the store re-reads it once more
		// before it quarantines it).
		return nil, fmt.Errorf("reading %s: %w: %w", name, chunk.ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

// stat checks that the object exists with operations/stat, once.
func (b *Backend) stat(ctx context.Context, name string) error {
	ep, err := b.rcd.endpoint()
	if err != nil {
		return err
	}
	var reply struct {
		Item *listEntry `json:"item"`
	}
	if err := call(ctx, ep, "operations/stat", map[string]any{"fs": b.remote, "remote": name}, &reply, maxReply); err != nil {
		return err
	}
	if reply.Item == nil {
		return errors.New("no such object")
	}
	return nil
}

// Delete removes the object; a missing one is not an error.
func (b *Backend) Delete(ctx context.Context, kind chunk.ObjectKind, id cid.Cid) error {
	name := chunk.ObjectName(kind, id)
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return call(ctx, ep, "operations/deletefile", map[string]any{"fs": b.remote, "remote": name}, nil, maxReply)
	})
	if err != nil && !notFound(err) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// listEntry is one entry of operations/list.
type listEntry struct {
	Path  string `json:"Path"`
	IsDir bool   `json:"IsDir"`
}

// list lists the files under folder dir, recursively; a missing folder is
// empty.
func (b *Backend) list(ctx context.Context, dir string) ([]listEntry, error) {
	var reply struct {
		List []listEntry `json:"list"`
	}
	in := map[string]any{"fs": b.remote, "remote": dir,
		"opt": map[string]any{"recurse": true, "filesOnly": true, "noModTime": true, "noMimeType": true}}
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return call(ctx, ep, "operations/list", in, &reply, maxListing)
	})
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", dir, err)
	}
	return reply.List, nil
}

// List calls fn for every object under the remote.
func (b *Backend) List(ctx context.Context, fn func(chunk.ObjectKind, cid.Cid) error) error {
	for _, top := range []string{"chunks", "manifests", "pins"} {
		ents, err := b.list(ctx, top)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if kind, id, ok := chunk.ParseObjectName(e.Path); ok && !e.IsDir {
				if err := fn(kind, id); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Quarantine moves the object to quarantine/<CID>.<nanoseconds>.
func (b *Backend) Quarantine(ctx context.Context, kind chunk.ObjectKind, id cid.Cid) error {
	name := chunk.ObjectName(kind, id)
	dst := chunk.QuarantineName(id, strconv.FormatInt(time.Now().UnixNano(), 10))
	err := b.do(ctx, func(ctx context.Context, ep endpoint) error {
		return call(ctx, ep, "operations/movefile", map[string]any{
			"srcFs": b.remote, "srcRemote": name, "dstFs": b.remote, "dstRemote": dst}, nil, maxReply)
	})
	if err != nil && !notFound(err) {
		return fmt.Errorf("quarantining %s: %w", name, err)
	}
	return nil
}

// Quarantined counts the objects under quarantine/.
func (b *Backend) Quarantined(ctx context.Context) (int64, error) {
	ents, err := b.list(ctx, "quarantine")
	return int64(len(ents)), err
}
