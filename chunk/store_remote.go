package chunk

import (
	"context"
	"errors"
	"fmt"
	"time"

	cid "github.com/ipfs/go-cid"
)

// This file holds what the store does differently when its objects live in
// a Backend (Options.Backend) rather than in its folder: the index stays in
// the folder, every object write, read, deletion and quarantine goes to the
// backend.

// remoteOpTimeout bounds a deletion or quarantine that has no caller's
// context (cleanup after a failed write, a removal).
const remoteOpTimeout = 2 * time.Minute

// Health returns nil while the store's backend works, else an error
// wrapping ErrBackend that says why. A folder store is always healthy.
func (s *Store) Health() error {
	if s.remote == nil {
		return nil
	}
	return s.remote.Health()
}

// limitNow is the limit in force: the configured limit and, when the
// backend reports a quota, what the store holds plus what the account has
// free (the stricter wins). Free is as of the backend's last report, so
// the store's use is taken as of the moment that report was first seen.
func (s *Store) limitNow() int64 {
	limit := s.limit.Load()
	if s.remote == nil {
		return limit
	}
	sp := s.remote.Space()
	if !sp.Known {
		return limit
	}
	s.statsMu.Lock()
	if sp != s.space {
		s.space, s.usedAtSpace = sp, s.stats.used
	}
	quota := s.usedAtSpace + max(sp.Free, 0)
	s.statsMu.Unlock()
	if limit <= 0 || quota < limit {
		return quota
	}
	return limit
}

// deleteObject removes an object from the folder or the backend, logging
// a failure: what it removes is no longer recorded, and fsck finds it.
func (s *Store) deleteObject(kind ObjectKind, id cid.Cid) {
	var err error
	if s.remote != nil {
		if herr := s.remote.Health(); herr != nil {
			// Do not wait out the retries of every deletion of a failed
			// write on a failing account: fsck (repair) removes what is
			// left once it is back.
			s.log.Warn("not removing object: backend failing", "kind", kind, "cid", id, "err", herr)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), remoteOpTimeout)
		err = s.remote.Delete(ctx, kind, id)
		cancel()
	} else {
		err = dirObjects{s.dir}.Delete(context.Background(), kind, id)
	}
	if err != nil {
		s.log.Warn("removing object", "kind", kind, "cid", id, "err", err)
	}
}

// readRemote reads a chunk of the recorded size from the backend. A
// shorter or longer object wraps ErrCorrupt.
func (s *Store) readRemote(ctx context.Context, id cid.Cid, size int64) ([]byte, error) {
	data, err := s.remote.Read(ctx, ObjectChunk, id, size)
	if err == nil && int64(len(data)) != size {
		err = fmt.Errorf("chunk %s is %d bytes, index says %d: %w", id, len(data), size, ErrCorrupt)
	}
	return data, err
}

// backendFault reports whether err is the backend failing rather than the
// object being bad or gone: such a chunk is not quarantined.
func backendFault(err error) bool {
	return err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrCorrupt)
}
