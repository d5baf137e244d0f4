package boltpages

import "syscall"

// dropMapped gives back the process's resident pages of the read-only
// shared mapping [addr, addr+n): they stay in the page cache, and the next
// read faults them in again from there.
func dropMapped(addr, n uintptr) error {
	if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, addr, n, syscall.MADV_DONTNEED); errno != 0 {
		return errno
	}
	return nil
}
