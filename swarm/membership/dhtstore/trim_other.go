//go:build !linux

package dhtstore

// dropMapped does nothing where it is not implemented.
func dropMapped(addr, n uintptr) error { return nil }
