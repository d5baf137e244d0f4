package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/chunk/rclone"
)

// openStore opens the chunk store with the backend [store] names, and
// returns what closes both. With backend = "rclone" it starts rclone first
// (docs/CLOUD.md); a store folder without an index next to a remote that
// holds objects (a replacement host) is rebuilt from the remote's listing.
func openStore(ctx context.Context, dir string, sc StoreConfig, o chunk.Options, rebuild bool, log *slog.Logger) (*chunk.Store, func(), error) {
	var b *rclone.Backend
	if sc.Backend == BackendRclone {
		var err error
		b, err = rclone.Start(ctx, rclone.Options{Remote: sc.Remote, Config: sc.RcloneConfig, Logger: log})
		if err != nil {
			return nil, nil, fmt.Errorf("starting the store backend: %w", err)
		}
		o.Backend = b
	}
	st, err := openIndexedStore(ctx, dir, o, rebuild, log)
	if err != nil {
		if b != nil {
			b.Close()
		}
		return nil, nil, err
	}
	return st, func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store", "err", err)
		}
		if b != nil {
			b.Close()
		}
	}, nil
}

// openIndexedStore opens the chunk store. A damaged or missing index
// (chunk.ErrIndexDamaged) is rebuilt from the stored objects with one loud
// log line, and so is a sound one when rebuild is set (--rebuild-index);
// docs/STORE.md#rebuilding-the-index.
func openIndexedStore(ctx context.Context, dir string, o chunk.Options, rebuild bool, log *slog.Logger) (*chunk.Store, error) {
	st, err := chunk.Open(dir, o)
	switch {
	case err == nil && !rebuild:
		return st, nil
	case err == nil:
		// Opening first migrates an older index, whose manifests the
		// rebuild could not find otherwise.
		if err := st.Close(); err != nil {
			return nil, err
		}
	case !errors.Is(err, chunk.ErrIndexDamaged):
		return nil, err
	}
	damage := err
	log.Info("rebuilding the store index from the stored objects", "dir", dir)
	start := time.Now()
	rep, rerr := chunk.RebuildIndex(ctx, dir, o)
	if rerr != nil {
		if damage != nil {
			return nil, fmt.Errorf("%w; rebuilding it: %w", damage, rerr)
		}
		return nil, fmt.Errorf("rebuilding the store index: %w", rerr)
	}
	attrs := []any{"objects", rep.Objects, "chunks", rep.Chunks, "contents", rep.Manifests,
		"whole", rep.Whole, "incomplete", len(rep.Incomplete), "corrupt", len(rep.Corrupt),
		"pinned", rep.Pinned, "kept_as", rep.KeptAs, "took", time.Since(start).Round(time.Millisecond)}
	if damage != nil {
		log.Error("store index damaged, rebuilt from the stored objects", append(attrs, "damage", damage.Error())...)
	} else {
		log.Warn("store index rebuilt on request", attrs...)
	}
	return chunk.Open(dir, o)
}

// describe names the backend for status: "local" or "rclone:" and the
// remote.
func (sc StoreConfig) describe() string {
	if sc.Backend == BackendRclone {
		return BackendRclone + ":" + sc.Remote
	}
	return BackendLocal
}

func errorString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
