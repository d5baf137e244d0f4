package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/proto"
	"github.com/annex-swarm/annex-swarm/swarm/replicate"
)

// A small put (docs/REPLICATION.md "Inline placement"): a replicated
// content that travels inside the placement requests is placed on the
// members while this member stores its own copy, not after. Each copy is
// a few durable writes; made one after the other, a small STORE from
// git-annex waited for both in turn (docs/PERFORMANCE.md "Where a small
// request's milliseconds go").

// placesWhileStoring reports whether a put of size bytes is a small put:
// in a swarm, replicated, small enough to travel inline.
func (d *Daemon) placesWhileStoring(size int64) bool {
	def := d.members.Current()
	return def != nil && size > 0 && size <= proto.MaxInlineSize && !def.Replication.Coded(size)
}

// putSmall is putContent for a small put. The manifest is computed from
// the bytes read once; the local store and the seeding run together. A
// put whose local store fails fails, and its seeding is cancelled (copies
// already made stay: the repair loop counts them).
func (d *Daemon) putSmall(ctx context.Context, r io.Reader, size int64, key string, progress func(client.Progress)) (client.PutResult, error) {
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return client.PutResult{}, fmt.Errorf("reading the content: %w", err)
	}
	if int64(len(data)) != size {
		return client.PutResult{}, fmt.Errorf("reading the content: %d bytes, expected %d (did it change?)", len(data), size)
	}
	m, err := chunk.ManifestOf(ctx, bytes.NewReader(data), d.store.Params(), key)
	if err != nil {
		return client.PutResult{}, err
	}
	enc, err := m.Encode()
	if err != nil {
		return client.PutResult{}, fmt.Errorf("encoding the manifest: %w", err)
	}
	root := chunk.ManifestCID(enc)

	seedCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stored sync.WaitGroup
	var storeErr error
	stored.Go(func() {
		got, _, err := d.store.Put(ctx, bytes.NewReader(data), size, key)
		if err == nil && got != root {
			err = fmt.Errorf("stored as %s, not %s as computed", got, root)
		}
		if err != nil {
			storeErr = err
			cancel()
		}
	})
	copies, seedErr := d.seedWith(seedCtx, progress, func(ctx context.Context, report func(replicate.SeedProgress)) (int, error) {
		return d.repl.SeedStoring(ctx, root, m, data, report)
	})
	stored.Wait()
	if storeErr != nil {
		return client.PutResult{}, storeErr
	}
	d.log.Info("content stored", "cid", root, "size", size, "key", key)
	d.announce(root)
	if seedErr != nil {
		return client.PutResult{}, fmt.Errorf("stored here, but: %w", seedErr)
	}
	return client.PutResult{CID: root.String(), Size: size, Copies: copies}, nil
}
