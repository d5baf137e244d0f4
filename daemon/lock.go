package daemon

import (
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/annex-swarm/annex-swarm/internal/home"
)

// ErrAlreadyRunning is returned when another daemon holds the home's lock.
var ErrAlreadyRunning = errors.New("another annex-swarmd is already running for this home")

// lockHome takes an exclusive, non-blocking flock on the home's lock file and
// records this daemon's pid and log in it. The lock is released when the
// process exits, however it exits.
func lockHome(h Home) (*os.File, error) {
	f, err := os.OpenFile(h.LockPath(), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", h.LockPath(), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (home %s)", ErrAlreadyRunning, h.Dir)
		}
		return nil, fmt.Errorf("locking %s: %w", h.LockPath(), err)
	}
	// Say who holds the home and where the log goes, for a client whose
	// daemon dies under it (home.ReadDaemonInfo).
	info := home.FormatDaemonInfo(home.DaemonInfo{PID: os.Getpid(), Log: home.StderrLog()})
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(info, 0)
	}
	return f, nil
}
