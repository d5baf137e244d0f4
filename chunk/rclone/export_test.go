package rclone

// KillRcd kills the backend's rclone rcd, as a crash would; the supervisor
// restarts it.
func KillRcd(b *Backend) { b.rcd.kill() }

// RcdPID is the process ID of the running rcd, 0 while none runs.
func RcdPID(b *Backend) int { return b.rcd.pid() }
