package daemon

import (
	"io"
	"os"

	"github.com/annex-swarm/annex-swarm/internal/atomicfile"
)

// WriteFileAtomic writes data to path so that a crash leaves either the old
// file or the new one (see internal/atomicfile).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, data, perm)
}

// writeFileAtomicFunc is WriteFileAtomic with the content written by fill
// (atomicfile.WriteFunc).
func writeFileAtomicFunc(path string, perm os.FileMode, durable bool, fill func(io.Writer) error) error {
	return atomicfile.WriteFunc(path, perm, durable, fill)
}

// appendFileSynced appends data to path and syncs it
// (atomicfile.AppendSynced).
func appendFileSynced(path string, data []byte, perm os.FileMode) error {
	return atomicfile.AppendSynced(path, data, perm)
}
