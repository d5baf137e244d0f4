// Package home names an annex-swarm home folder and the well-known paths in
// it. It is the one place that decides which home a program uses, shared by
// the daemon, the CLI and the git-annex special remote.
package home

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Env is the environment variable naming the home folder when --home is not
// given.
const Env = "ANNEX_SWARM_HOME"

// DefaultName is the home folder's name under the user's home directory when
// neither --home nor $ANNEX_SWARM_HOME names one.
const DefaultName = ".annex-swarm"

// Home is a daemon's home folder and the well-known paths inside it.
type Home struct {
	Dir string
}

// Resolve picks the home folder: flag, else $ANNEX_SWARM_HOME, else
// ~/.annex-swarm. The result is absolute.
func Resolve(flag string) (Home, error) {
	dir := flag
	if dir == "" {
		dir = os.Getenv(Env)
	}
	if dir == "" {
		u, err := os.UserHomeDir()
		if err != nil {
			return Home{}, fmt.Errorf("finding the home folder: %w", err)
		}
		dir = filepath.Join(u, DefaultName)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Home{}, fmt.Errorf("resolving home %q: %w", dir, err)
	}
	return Home{Dir: abs}, nil
}

// Ensure creates the home folder (0700) if it does not exist.
func (h Home) Ensure() error {
	if err := os.MkdirAll(h.Dir, 0o700); err != nil {
		return fmt.Errorf("creating home %s: %w", h.Dir, err)
	}
	return nil
}

// ConfigPath is the dotfile with listen addresses and limits.
func (h Home) ConfigPath() string { return filepath.Join(h.Dir, "config.toml") }

// KeyPath is the libp2p identity key.
func (h Home) KeyPath() string { return filepath.Join(h.Dir, "identity.key") }

// SocketPath is the control API's Unix socket.
func (h Home) SocketPath() string { return filepath.Join(h.Dir, "control.sock") }

// StoreDir is the chunk store.
func (h Home) StoreDir() string { return filepath.Join(h.Dir, "store") }

// RulesPath is the adopted, verified swarm definition.
func (h Home) RulesPath() string { return filepath.Join(h.Dir, "swarm.rules") }

// DHTRecordsPath is the DHT's provider records (a cache of soft state,
// rebuilt by the members' announcements; docs/EXCHANGE.md "Discovery").
func (h Home) DHTRecordsPath() string { return filepath.Join(h.Dir, "dht.db") }

// LockPath is the single-instance lock file.
func (h Home) LockPath() string { return filepath.Join(h.Dir, "daemon.lock") }

// WebTokenPath is where the daemon writes the web status page's token (0600).
func (h Home) WebTokenPath() string { return filepath.Join(h.Dir, "web.token") }

// LogPath is where a daemon started by the demo or a test harness writes its
// log. A daemon run by hand logs to its stderr instead.
func (h Home) LogPath() string { return filepath.Join(h.Dir, "daemon.log") }

// The daemon records in its lock file who holds the home and where its log
// goes, so that a client whose daemon died can say where to look.

// DaemonInfo is what a running daemon records about itself.
type DaemonInfo struct {
	PID int
	// Log says where the daemon's log goes: a file path, the journal, or
	// its standard error.
	Log string
}

// maxInfo bounds the lock file a client reads.
const maxInfo = 4096

// FormatDaemonInfo is the lock file's content for di.
func FormatDaemonInfo(di DaemonInfo) []byte {
	return fmt.Appendf(nil, "pid %d\nlog %s\n", di.PID, strings.ReplaceAll(di.Log, "\n", " "))
}

// ReadDaemonInfo reads what the last daemon of h recorded; ok is false when
// it recorded nothing readable.
func ReadDaemonInfo(h Home) (di DaemonInfo, ok bool) {
	f, err := os.Open(h.LockPath())
	if err != nil {
		return di, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxInfo))
	if err != nil {
		return di, false
	}
	return parseDaemonInfo(b)
}

// parseDaemonInfo reads the "pid N" and "log WHERE" lines of a lock file
// (at most maxInfo bytes of it); other lines are ignored.
func parseDaemonInfo(b []byte) (di DaemonInfo, ok bool) {
	if len(b) > maxInfo {
		b = b[:maxInfo]
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(strings.TrimRight(line, "\n"), " ")
		switch k {
		case "pid":
			di.PID, _ = strconv.Atoi(v)
		case "log":
			di.Log = v
		}
	}
	return di, di.PID > 0 && di.Log != ""
}

// StderrLog describes where this process's standard error goes, as a place
// to read its log: the file it is redirected to, the systemd journal, or a
// plain description.
func StderrLog() string {
	target, err := os.Readlink("/proc/self/fd/2")
	switch {
	case err != nil:
		return "the daemon's standard error"
	case os.Getenv("JOURNAL_STREAM") != "" && strings.HasPrefix(target, "socket:"):
		return "the systemd journal (journalctl)"
	case strings.HasPrefix(target, "/dev/pts/") || strings.HasPrefix(target, "/dev/tty"):
		return "the terminal " + target + " it was started on"
	case target == "/dev/null":
		return "nowhere (its standard error was /dev/null)"
	case strings.HasPrefix(target, "/"):
		return target
	}
	return "the daemon's standard error (" + target + ")"
}
