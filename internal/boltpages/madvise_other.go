//go:build !linux

package boltpages

// dropMapped does nothing where it is not implemented.
func dropMapped(addr, n uintptr) error { return nil }
