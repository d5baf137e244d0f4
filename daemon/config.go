package daemon

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/annex-swarm/annex-swarm/rules"
)

// MaxConfigSize bounds config.toml; a dotfile larger than this is refused.
const MaxConfigSize = 64 << 10

// DefaultListen is used when config.toml names no listen addresses.
var DefaultListen = []string{"/ip4/0.0.0.0/tcp/4101", "/ip4/0.0.0.0/udp/4101/quic-v1"}

// Config is the host's dotfile, HOME/config.toml.
type Config struct {
	// Listen lists the libp2p multiaddrs to listen on.
	Listen []string
	// Limits are this host's own limits; the swarm rules may make them
	// stricter (see rules.Limits.Stricter).
	Limits rules.Limits
	// WebListen is the loopback host:port of the web status page
	// ([web] listen); empty = off.
	WebListen string
	// MetricsListen is the loopback host:port of the Prometheus endpoint
	// ([metrics] listen); empty = off.
	MetricsListen string
	// Store says where the store keeps its objects.
	Store StoreConfig
}

// StoreConfig is the [store] table: where the store keeps its objects.
type StoreConfig struct {
	// Backend is "local" (the default: files in the home) or "rclone" (an
	// rclone remote, docs/CLOUD.md).
	Backend string
	// Remote is the rclone remote and path, "NAME:path" (rclone only).
	Remote string
	// RcloneConfig is the rclone config file; "" means rclone's default.
	RcloneConfig string
}

// Store backends.
const (
	BackendLocal  = "local"
	BackendRclone = "rclone"
)

// fileConfig is config.toml as written; sizes and rates are human strings.
type fileConfig struct {
	Listen  []string   `toml:"listen"`
	Limits  fileLimits `toml:"limits"`
	Web     fileServer `toml:"web"`
	Metrics fileServer `toml:"metrics"`
	Store   fileStore  `toml:"store"`
}

// fileServer is a table naming a local HTTP listener ([web], [metrics]).
type fileServer struct {
	Listen string `toml:"listen"`
}

// fileStore is the [store] table: where the store keeps its objects.
type fileStore struct {
	Backend      string `toml:"backend"`
	Remote       string `toml:"remote"`
	RcloneConfig string `toml:"rclone_config"`
}

type fileLimits struct {
	Storage  sizeValue `toml:"storage"`
	Upload   rateValue `toml:"upload"`
	Download rateValue `toml:"download"`
}

type sizeValue struct{ n int64 }

func (s *sizeValue) UnmarshalText(b []byte) error {
	n, err := rules.ParseSize(string(b))
	s.n = n
	return err
}

type rateValue struct{ n int64 }

func (r *rateValue) UnmarshalText(b []byte) error {
	n, err := rules.ParseRate(string(b))
	r.n = n
	return err
}

// LoadConfig reads path. A missing file gives the defaults; unknown keys and
// bad values are refused with the file, line and reason.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{Listen: DefaultListen}, nil
	}
	if err != nil {
		return Config{}, fmt.Errorf("reading config: %w", err)
	}
	return ParseConfig(path, b)
}

// ParseConfig parses the bytes of config.toml; name is used in errors.
func ParseConfig(name string, b []byte) (Config, error) {
	if len(b) > MaxConfigSize {
		return Config{}, fmt.Errorf("%s: file is %d bytes, more than the %d allowed", name, len(b), MaxConfigSize)
	}
	var fc fileConfig
	md, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&fc)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return Config{}, fmt.Errorf("%s:%d: %s", name, pe.Position.Line, oneLine(pe.Message))
		}
		return Config{}, fmt.Errorf("%s: %s", name, oneLine(err.Error()))
	}
	if und := md.Undecoded(); len(und) > 0 {
		k := und[0]
		return Config{}, fmt.Errorf("%s:%d: unknown key %q", name, lineOfKey(b, k), k.String())
	}
	cfg := Config{
		Listen: fc.Listen,
		Limits: rules.Limits{Storage: fc.Limits.Storage.n, Upload: fc.Limits.Upload.n, Download: fc.Limits.Download.n},
	}
	for _, a := range cfg.Listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return Config{}, fmt.Errorf("%s:%d: listen address %q: %s", name, lineOfString(b, a), a, oneLine(err.Error()))
		}
	}
	for _, srv := range []struct{ table, addr string }{{"web", fc.Web.Listen}, {"metrics", fc.Metrics.Listen}} {
		if srv.addr == "" {
			continue
		}
		if err := CheckLoopback(srv.addr); err != nil {
			return Config{}, fmt.Errorf("%s:%d: [%s] listen: %w", name, lineOfKey(b, toml.Key{srv.table, "listen"}), srv.table, err)
		}
	}
	cfg.WebListen, cfg.MetricsListen = fc.Web.Listen, fc.Metrics.Listen
	if cfg.Store, err = storeConfig(name, b, fc.Store); err != nil {
		return Config{}, err
	}
	if !md.IsDefined("listen") {
		cfg.Listen = DefaultListen
	}
	return cfg, nil
}

// CheckLoopback accepts a host:port whose host is a loopback IP literal
// (127.0.0.0/8 or ::1): the web page and the metrics are never served beyond
// this machine. Names such as "localhost" are refused, since what they
// resolve to is not ours to decide.
func CheckLoopback(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%q: only a loopback address (127.0.0.1 or [::1]) is allowed, as the page and metrics are for this machine only", addr)
	}
	return nil
}

// storeConfig checks the [store] table.
func storeConfig(name string, b []byte, fs fileStore) (StoreConfig, error) {
	sc := StoreConfig{Backend: fs.Backend, Remote: fs.Remote, RcloneConfig: fs.RcloneConfig}
	line := func(k string) int { return lineOfKey(b, toml.Key{"store", k}) }
	switch sc.Backend {
	case "", BackendLocal:
		sc.Backend = BackendLocal
		if sc.Remote != "" || sc.RcloneConfig != "" {
			return sc, fmt.Errorf("%s:%d: store remote and rclone_config need backend = %q", name, max(line("remote"), line("rclone_config")), BackendRclone)
		}
	case BackendRclone:
		if rn, _, ok := strings.Cut(sc.Remote, ":"); !ok || rn == "" {
			return sc, fmt.Errorf("%s:%d: store remote %q: want \"NAME:path\", an rclone remote", name, line("remote"), sc.Remote)
		}
		if sc.RcloneConfig != "" && !filepath.IsAbs(sc.RcloneConfig) {
			return sc, fmt.Errorf("%s:%d: store rclone_config %q: want an absolute path", name, line("rclone_config"), sc.RcloneConfig)
		}
	default:
		return sc, fmt.Errorf("%s:%d: store backend %q: want %q or %q", name, line("backend"), sc.Backend, BackendLocal, BackendRclone)
	}
	return sc, nil
}

// lineOfKey finds the line that defines key k (under its table), or 0.
func lineOfKey(b []byte, k toml.Key) int {
	table := strings.Join(k[:len(k)-1], ".")
	last := k[len(k)-1]
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		t := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(t, "[") {
			cur = strings.Trim(t, "[] ")
			if len(k) == 1 && cur == last {
				return line
			}
			continue
		}
		name, _, ok := strings.Cut(t, "=")
		if ok && cur == table && strings.Trim(strings.TrimSpace(name), `"'`) == last {
			return line
		}
	}
	return 0
}

// lineOfString finds the first line containing s, or 0.
func lineOfString(b []byte, s string) int {
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimPrefix(s, "toml: ")
}
