package chunk

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	cid "github.com/ipfs/go-cid"
)

// This file declares Backend, where a store keeps its objects when they do
// not live in the store folder (docs/CLOUD.md).

// ErrBackend wraps the errors of a backend that keeps failing: the store
// reports it in Health and refuses writes until the backend recovers.
var ErrBackend = errors.New("chunk: storage backend failing")

// Backend keeps a store's objects (docs/STORE.md#objects) somewhere other
// than the store folder, such as a cloud account behind rclone. The index
// stays in the store folder as a cache of what the backend holds;
// RebuildIndex recomputes it from List and Read.
//
// Objects are named by ObjectName. A Backend is safe for concurrent use.
// Without one (Options.Backend nil) the store keeps its objects as files in
// its folder, written by its own pipelined path (docs/STORE.md#writes).
type Backend interface {
	// Put stores data as the object; when it returns nil the backend has
	// confirmed the write. Storing an object again replaces it.
	Put(ctx context.Context, kind ObjectKind, id cid.Cid, data []byte) error
	// Read returns an object's bytes, at most limit of them; a longer
	// object is an error wrapping ErrCorrupt, a missing one wraps
	// ErrNotFound.
	Read(ctx context.Context, kind ObjectKind, id cid.Cid, limit int64) ([]byte, error)
	// Delete removes an object; a missing one is not an error.
	Delete(ctx context.Context, kind ObjectKind, id cid.Cid) error
	// List calls fn once for every stored object, in no particular order.
	// Names that are not objects are skipped.
	List(ctx context.Context, fn func(kind ObjectKind, id cid.Cid) error) error
	// Quarantine moves an object that failed verification out of the way.
	Quarantine(ctx context.Context, kind ObjectKind, id cid.Cid) error
	// Quarantined counts the objects quarantined so far, ever.
	Quarantined(ctx context.Context) (int64, error)
	// Space returns what the backend last reported of its quota; it does
	// not block.
	Space() Space
	// Health returns nil while the backend works, else an error wrapping
	// ErrBackend that says why.
	Health() error
}

// Space is a backend's quota as it reports it.
type Space struct {
	Known bool  // the backend reports a quota; the other fields are valid
	Total int64 // bytes of the account
	Used  int64 // bytes used, by anything
	Free  int64 // bytes still free
}

// ObjectName is the object's name relative to the top of the store:
// <kind folder>/<first digest byte in hex>/<CID>, with slashes.
func ObjectName(kind ObjectKind, id cid.Cid) string {
	return path.Join(objectFolders[kind], fmt.Sprintf("%02x", digest(id)[0]), id.String())
}

// ParseObjectName is the inverse of ObjectName; names that are not objects
// (temporary files, strangers, objects in the wrong folder) give false.
func ParseObjectName(name string) (ObjectKind, cid.Cid, bool) {
	top, rest, ok := strings.Cut(name, "/")
	if !ok {
		return 0, cid.Undef, false
	}
	for kind, t := range objectFolders {
		if t != top {
			continue
		}
		_, base, ok := strings.Cut(rest, "/")
		if !ok {
			return 0, cid.Undef, false
		}
		id, ok := objectID(ObjectKind(kind), base)
		if !ok || ObjectName(ObjectKind(kind), id) != name {
			return 0, cid.Undef, false
		}
		return ObjectKind(kind), id, true
	}
	return 0, cid.Undef, false
}

// QuarantineName is where Quarantine moves a corrupt object:
// quarantine/<CID>.<suffix>, suffix being unique (a time in nanoseconds).
func QuarantineName(id cid.Cid, suffix string) string {
	return "quarantine/" + id.String() + "." + suffix
}

// Put, Delete, Space and Health make dirObjects a Backend: the store
// folder as one. The Store itself writes its folder through its pipelined
// path; RebuildIndex reads it through dirObjects.
func (d dirObjects) Put(ctx context.Context, kind ObjectKind, id cid.Cid, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p := objectPath(d.dir, kind, id)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("writing %s %s: %w", kind, id, err)
	}
	err := writeSynced(p, data, nil)
	if err == nil {
		err = syncDir(filepath.Dir(p))
	}
	if err != nil {
		return fmt.Errorf("writing %s %s: %w", kind, id, err)
	}
	return nil
}

func (d dirObjects) Delete(ctx context.Context, kind ObjectKind, id cid.Cid) error {
	if err := os.Remove(objectPath(d.dir, kind, id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("deleting %s %s: %w", kind, id, err)
	}
	return nil
}

// Space is unknown for the folder: the storage limit alone bounds it.
func (d dirObjects) Space() Space { return Space{} }

func (d dirObjects) Health() error { return nil }

// errStopList ends a List early.
var errStopList = errors.New("stop listing")

// backendHasObjects reports whether a backend holds any chunk or manifest.
func backendHasObjects(ctx context.Context, b Backend) (bool, error) {
	found := false
	err := b.List(ctx, func(kind ObjectKind, _ cid.Cid) error {
		if kind == ObjectPin {
			return nil
		}
		found = true
		return errStopList
	})
	if errors.Is(err, errStopList) {
		err = nil
	}
	return found, err
}
