//go:build !linux

package directio

import "os"

// openDirect has no O_DIRECT to use: every write goes through the page cache.
func openDirect(string) (*os.File, error) { return nil, ErrUnsupported }
