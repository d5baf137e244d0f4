package daemon

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/internal/directio"
)

// A client member's get (docs/STORE.md "What a client member keeps"):
// the verified chunks go straight into the output file, at their offsets,
// in a temporary file that is synced and renamed into place; nothing is
// stored.

// getsDirect reports whether a get of root writes straight into its
// output: on a client member, unless the store holds the whole content.
func (d *Daemon) getsDirect(ctx context.Context, root cid.Cid) bool {
	if !d.isClient() {
		return false
	}
	if _, err := d.store.Manifest(ctx, root); err != nil {
		return true
	}
	missing, err := d.store.Missing(ctx, root)
	return err != nil || len(missing) > 0
}

// getDirect fetches root into req.Path (an erasure-coded content too: its
// chunks are decoded into the output).
func (d *Daemon) getDirect(ctx context.Context, req client.GetRequest, root cid.Cid, h hash.Hash, progress func(client.Progress)) (res client.GetResult, err error) {
	dir := filepath.Dir(req.Path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(req.Path)+".tmp-*")
	if err != nil {
		return res, fmt.Errorf("creating temp file for %s: %w", req.Path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	var w io.WriterAt = f
	var direct *directio.Writer
	var hashed chan hashResult
	fetched := make(chan struct{})
	if h == nil && !req.NoSync {
		// A durable output: its blocks go around the page cache, which
		// costs a fraction of the CPU and leaves less for the sync.
		// (A hashed get reads back what it wrote: it stays buffered.)
		direct = directio.Open(f)
		w = direct
	}
	if h != nil {
		ph := newPrefixHasher(f, h)
		w, hashed = ph, make(chan hashResult, 1)
		go func() {
			n, err := ph.run(fetched)
			hashed <- hashResult{n, err}
		}()
	}
	m, err := d.xchg.FetchInto(ctx, root, w, fetchProgress(progress))
	close(fetched)
	if direct != nil {
		if ferr := direct.Finish(); err == nil {
			err = ferr
		}
	}
	if hashed != nil {
		hr := <-hashed
		if err == nil && hr.err != nil {
			err = hr.err
		} else if err == nil && hr.n != m.Size {
			err = fmt.Errorf("hashed %d bytes of %d", hr.n, m.Size)
		}
	}
	if err == nil {
		err = f.Truncate(m.Size) // an empty content has no chunk to write
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil && !req.NoSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return res, fmt.Errorf("writing %s: %w", req.Path, err)
	}
	if err := os.Rename(tmp, req.Path); err != nil {
		return res, fmt.Errorf("renaming into %s: %w", req.Path, err)
	}
	if !req.NoSync {
		if err := syncFolder(dir); err != nil {
			return res, err
		}
	}
	res = client.GetResult{CID: root.String(), Size: m.Size}
	if h != nil {
		res.Digest = hex.EncodeToString(h.Sum(nil))
	}
	return res, nil
}

// hashResult is the outcome of a prefixHasher's run.
type hashResult struct {
	n   int64
	err error
}

// syncFolder fsyncs a folder, making a rename in it durable.
func syncFolder(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening folder %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing folder %s: %w", dir, err)
	}
	return nil
}
