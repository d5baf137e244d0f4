package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// cleanMarker is the file Close leaves in the store's folder and Open
// removes. Open finding none means the store was not closed (a kill -9, a
// power cut, a first open), so a write may have been cut between its
// object file and its index entry: a put's object written and not yet
// recorded, or a Remove's entry deleted and its files not yet unlinked.
// Those files are orphans, harmless but reported by Fsck; Open removes them
// then (docs/STORE.md "Crash recovery").
const cleanMarker = "clean"

// recoverUnclean runs at Open: after a clean Close it only removes the
// marker; otherwise it removes the object files the index does not record.
// A store in a Backend is left as it is (a listing of the bucket at every
// start costs too much; Fsck with repair removes its orphans).
func (s *Store) recoverUnclean(ctx context.Context) error {
	if s.remote != nil {
		return nil
	}
	marker := filepath.Join(s.dir, cleanMarker)
	_, err := os.Stat(marker)
	switch {
	case err == nil:
		if err := os.Remove(marker); err != nil {
			return fmt.Errorf("opening store: %w", err)
		}
		if err := syncDir(s.dir); err != nil {
			return fmt.Errorf("opening store: %w", err)
		}
		return nil
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("opening store: %w", err)
	}
	var rep FsckReport
	if err := s.fsckOrphans(ctx, true, &rep); err != nil {
		return fmt.Errorf("opening store: removing what an unclean stop left: %w", err)
	}
	if n := len(rep.Orphans); n > 0 {
		s.log.Warn("the store was not closed cleanly; removed object files the index does not record", "count", n)
	}
	return nil
}

// markClean writes the marker that tells the next Open the store was
// closed cleanly.
func (s *Store) markClean() error {
	if s.remote != nil {
		return nil
	}
	f, err := os.Create(filepath.Join(s.dir, cleanMarker))
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	return err
}
