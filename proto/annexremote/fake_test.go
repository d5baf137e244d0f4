package annexremote

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// memBackend is an in-memory Backend for the golden transcripts. It records
// every call it gets (compared with the "= " lines of a transcript) and
// behaves according to the key:
//   - a key containing FAIL fails to store, with a two-line message;
//   - a key starting with UNKNOWN has unknown presence, one starting with
//     ERR makes CheckPresent fail;
//   - retrieving a key starting with BLOCK waits until CheckPresent is asked
//     about a key starting with RELEASE: a transcript can only finish if the
//     two requests run concurrently.
type memBackend struct {
	mu      sync.Mutex
	calls   []string
	keys    map[string]bool
	release chan struct{}
	once    sync.Once
}

func newMemBackend() *memBackend {
	return &memBackend{keys: map[string]bool{}, release: make(chan struct{})}
}

var _ Backend = (*memBackend)(nil)

func (m *memBackend) record(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
}

func (m *memBackend) recorded() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

func (m *memBackend) InitRemote(ctx context.Context, cfg Config) error {
	home, err := cfg.Get(ctx, "home")
	if err != nil {
		return err
	}
	m.record("initremote home=%s", home)
	if home == "" {
		return errors.New("home=DIR is required")
	}
	return cfg.Set(ctx, "home", home)
}

func (m *memBackend) Prepare(ctx context.Context, cfg Config) error {
	home, err := cfg.Get(ctx, "home")
	if err != nil {
		return err
	}
	name, err := cfg.GitRemoteName(ctx)
	if errors.Is(err, ErrUnsupported) {
		name = "(unsupported)"
	} else if err != nil {
		return err
	}
	m.record("prepare home=%s remote=%s", home, name)
	if home == "/missing" {
		return errors.New("daemon not running at /missing")
	}
	return cfg.Info(ctx, "connected to "+home)
}

func (m *memBackend) transfer(ctx context.Context, op, key, file string, progress ProgressFunc) error {
	m.record("%s %s %s", op, key, file)
	if op == "store" && strings.Contains(key, "FAIL") {
		return errors.New("disk full\nwhile storing")
	}
	if op == "retrieve" {
		m.mu.Lock()
		ok := m.keys[key]
		m.mu.Unlock()
		if !ok {
			return fmt.Errorf("key %s not found", key)
		}
		if strings.HasPrefix(key, "BLOCK") {
			select {
			case <-m.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	// The first report is sent at once, the next two are coalesced into one
	// PROGRESS line at the end (the test interval is long).
	progress(5)
	progress(8)
	progress(10)
	if op == "store" {
		m.mu.Lock()
		m.keys[key] = true
		m.mu.Unlock()
	}
	return nil
}

func (m *memBackend) Store(ctx context.Context, key, file string, progress ProgressFunc) error {
	return m.transfer(ctx, "store", key, file, progress)
}

func (m *memBackend) Retrieve(ctx context.Context, key, file string, progress ProgressFunc) error {
	return m.transfer(ctx, "retrieve", key, file, progress)
}

func (m *memBackend) CheckPresent(ctx context.Context, key string) (Presence, error) {
	m.record("checkpresent %s", key)
	switch {
	case strings.HasPrefix(key, "RELEASE"):
		m.once.Do(func() { close(m.release) })
	case strings.HasPrefix(key, "UNKNOWN"):
		return Unknown("members unreachable"), nil
	case strings.HasPrefix(key, "ERR"):
		return Absent, errors.New("control socket: connection refused")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys[key] {
		return Present, nil
	}
	return Absent, nil
}

func (m *memBackend) Remove(ctx context.Context, key string) error {
	m.record("remove %s", key)
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, key) // absent counts as removed
	return nil
}

func (m *memBackend) Whereis(ctx context.Context, key string) (string, error) {
	m.record("whereis %s", key)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.keys[key] {
		return "alpha, beta", nil
	}
	return "", nil
}

func (m *memBackend) Info(ctx context.Context) ([]InfoField, error) {
	m.record("info")
	return []InfoField{{"swarm", "test swarm"}, {"copies", "2 of 3"}}, nil
}
