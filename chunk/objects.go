package chunk

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

	cid "github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/internal/directio"
)

// This file implements the stored objects of docs/STORE.md#objects: chunk
// files, manifest objects and pin markers. The index is a cache of what
// they say; RebuildIndex recomputes it from a listing of them.

// ObjectKind is the kind of a stored object.
type ObjectKind int

const (
	// ObjectChunk is a chunk: its bytes, named by its CID.
	ObjectChunk ObjectKind = iota
	// ObjectManifest is a manifest: its canonical encoding, named by its CID.
	ObjectManifest
	// ObjectPin is an empty marker: the manifest of the same CID was stored
	// by Put (the local user handed the whole content to this host).
	ObjectPin
)

func (k ObjectKind) String() string {
	switch k {
	case ObjectChunk:
		return "chunk"
	case ObjectManifest:
		return "manifest"
	case ObjectPin:
		return "pin"
	}
	return fmt.Sprintf("kind %d", int(k))
}

// objectSource is what RebuildIndex needs from a store backend: a listing of
// its objects, their bytes, and a place to put the ones that fail
// verification. The folder store implements it with dirObjects; another
// backend (a cloud account behind rclone) can implement the same three.
type objectSource interface {
	// List calls fn once for every stored object, in no particular order.
	// Names that are not objects (temporary files, strangers) are skipped.
	List(ctx context.Context, fn func(kind ObjectKind, id cid.Cid) error) error
	// Read returns an object's bytes, at most limit of them; a longer
	// object is an error wrapping ErrCorrupt.
	Read(ctx context.Context, kind ObjectKind, id cid.Cid, limit int64) ([]byte, error)
	// Quarantine moves an object that failed verification out of the way.
	Quarantine(ctx context.Context, kind ObjectKind, id cid.Cid) error
	// Quarantined counts the objects quarantined so far, ever.
	Quarantined(ctx context.Context) (int64, error)
}

// objectFolders are the top folders of each kind, each with 256 subfolders
// named by the first digest byte in hex.
var objectFolders = [...]string{ObjectChunk: "chunks", ObjectManifest: "manifests", ObjectPin: "pins"}

// objectPath is <kind folder>/<first digest byte in hex>/<CID>.
func objectPath(dir string, kind ObjectKind, id cid.Cid) string {
	return filepath.Join(dir, objectFolders[kind], hex.EncodeToString(digest(id)[:1]), id.String())
}

// dirObjects is objectSource for the store folder.
type dirObjects struct{ dir string }

func (d dirObjects) List(ctx context.Context, fn func(ObjectKind, cid.Cid) error) error {
	for kind, top := range objectFolders {
		for i := range 256 {
			if err := ctx.Err(); err != nil {
				return err
			}
			sub := filepath.Join(d.dir, top, fmt.Sprintf("%02x", i))
			names, err := readNames(sub)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("listing %s: %w", sub, err)
			}
			for _, name := range names {
				id, ok := objectID(ObjectKind(kind), name)
				if ok && objectPath(d.dir, ObjectKind(kind), id) == filepath.Join(sub, name) {
					if err := fn(ObjectKind(kind), id); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// objectID parses an object's file name; temporary files and names of the
// wrong form are not objects.
func objectID(kind ObjectKind, name string) (cid.Cid, bool) {
	if strings.HasPrefix(name, tempPrefix) {
		return cid.Undef, false
	}
	id, err := cid.Decode(name)
	if err != nil {
		return cid.Undef, false
	}
	if kind == ObjectChunk {
		return id, IsChunkCID(id)
	}
	return id, IsManifestCID(id)
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

func (d dirObjects) Read(ctx context.Context, kind ObjectKind, id cid.Cid, limit int64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path := objectPath(d.dir, kind, id)
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s %s is %d bytes, over %d: %w", kind, id, st.Size(), limit, ErrCorrupt)
	}
	return readFileInto(path, st.Size(), nil)
}

func (d dirObjects) Quarantine(ctx context.Context, kind ObjectKind, id cid.Cid) error {
	return quarantineFile(d.dir, objectPath(d.dir, kind, id), id)
}

func (d dirObjects) Quarantined(ctx context.Context) (int64, error) {
	names, err := readNames(filepath.Join(d.dir, "quarantine"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	return int64(len(names)), err
}

// hasObjects reports whether any chunk or manifest object is stored,
// reading a few names per folder at most.
func hasObjects(dir string) (bool, error) {
	for _, top := range objectFolders[:ObjectPin] {
		for i := range 256 {
			found, err := hasObject(filepath.Join(dir, top, fmt.Sprintf("%02x", i)))
			if found || err != nil {
				return found, err
			}
		}
	}
	return false, nil
}

// hasObject reports whether a folder holds a file other than a temporary
// one; a missing folder holds none.
func hasObject(dir string) (bool, error) {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	for {
		names, err := f.Readdirnames(16)
		for _, n := range names {
			if !strings.HasPrefix(n, tempPrefix) {
				return true, nil
			}
		}
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
	}
}

// writeObject writes data as an object: temporary file in its folder,
// fsync, rename under mu. The caller fsyncs the folder before indexing.
func (s *Store) writeObject(kind ObjectKind, id cid.Cid, data []byte) error {
	if s.remote != nil {
		ctx, cancel := context.WithTimeout(context.Background(), remoteOpTimeout)
		defer cancel()
		if err := s.uploadOnce(ctx, kind, id, data); err != nil {
			return fmt.Errorf("writing %s %s: %w", kind, id, err)
		}
		return nil
	}
	if err := writeSynced(objectPath(s.dir, kind, id), data, &s.mu); err != nil {
		return fmt.Errorf("writing %s %s: %w", kind, id, err)
	}
	return nil
}

// writeSynced writes data to path as the store writes every file: a
// temporary file in path's folder, written, fsynced and closed, then
// renamed over path (under mu when not nil, so that no folder listing sees
// it half done). The temporary file is removed on failure; the caller
// fsyncs the folder.
func writeSynced(path string, data []byte, mu *sync.Mutex) error {
	f, err := os.CreateTemp(filepath.Dir(path), tempPrefix+"*")
	if err != nil {
		return err
	}
	err = writeData(f, data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if mu != nil {
			mu.Lock()
		}
		err = os.Rename(f.Name(), path)
		if mu != nil {
			mu.Unlock()
		}
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// directMin is the size from which a file's bytes are written around the
// page cache (internal/directio): at the default parameters, every chunk
// but a content's last (DefaultParams.Min is 256 KiB). A
// small file is cheaper through the cache, and its reader finds it there.
const directMin = 256 << 10

// writeData writes data at the start of the new, empty file f: directly
// when it is directMin bytes or more and the filesystem allows it. The
// caller fsyncs f as for any write.
func writeData(f *os.File, data []byte) error {
	if len(data) < directMin {
		_, err := f.Write(data)
		return err
	}
	w := directio.Open(f)
	_, err := w.WriteAt(data, 0)
	if ferr := w.Finish(); err == nil {
		err = ferr
	}
	return err
}

// persistManifest writes the manifest object (and the pin marker when
// pinned) and fsyncs their folders, so that the index may record them. The
// caller holds root (see Remove) until its index transaction commits.
func (s *Store) persistManifest(root cid.Cid, enc []byte, pinned bool) error {
	return s.persistManifestWith(root, enc, pinned, nil)
}

// persistManifestWith is persistManifest that also fsyncs the folders of
// dirs (a put's new chunk files) in the same round: the objects are written
// side by side and every folder is synced side by side, so a small put
// waits for two sync rounds here instead of one per file and folder
// (docs/STORE.md "Writes").
func (s *Store) persistManifestWith(root cid.Cid, enc []byte, pinned bool, dirs map[string]bool) error {
	objDirs, err := s.writeManifestObjects(root, enc, pinned)
	if err != nil {
		return err
	}
	all := setOf(objDirs) // none with a Backend
	for d := range dirs {
		all[d] = true
	}
	return syncDirs(all)
}

// writeManifestObjects writes the manifest object and, when pinned, the pin
// marker, side by side, each synced and renamed into place. It returns the
// folders the caller must fsync before the index records them (none with a
// Backend, which confirmed each write).
func (s *Store) writeManifestObjects(root cid.Cid, enc []byte, pinned bool) (dirs []string, err error) {
	kinds := []ObjectKind{ObjectManifest}
	if pinned {
		kinds = append(kinds, ObjectPin)
	}
	errs := make([]error, len(kinds))
	var wg sync.WaitGroup
	for i, kind := range kinds {
		data := enc
		if kind == ObjectPin {
			data = nil
		}
		wg.Go(func() { errs[i] = s.writeObject(kind, root, data) })
		dirs = append(dirs, filepath.Dir(objectPath(s.dir, kind, root)))
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if s.remote != nil {
		return nil, nil
	}
	return dirs, nil
}

// unlinkManifest removes a manifest's object and pin marker unless a write
// in flight holds it. Call with mu held, after the index forgot it.
func (s *Store) unlinkManifest(root cid.Cid) {
	if s.holds[root.KeyString()] > 0 {
		return
	}
	for _, kind := range []ObjectKind{ObjectPin, ObjectManifest} {
		s.deleteObject(kind, root)
	}
}
