// Package remote is the backend of git-annex-remote-swarm: it answers the
// requests of git-annex's special remote protocol (proto/annexremote) with the
// local annex-swarmd's control API.
package remote

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/internal/home"
	"github.com/annex-swarm/annex-swarm/proto/annexremote"
)

// Daemon is what the backend needs of annex-swarmd's control API.
type Daemon interface {
	Status(ctx context.Context) (client.Status, error)
	Put(ctx context.Context, req client.PutRequest, progress func(client.Progress)) (client.PutResult, error)
	Get(ctx context.Context, req client.GetRequest, progress func(client.Progress)) (client.GetResult, error)
	Where(ctx context.Context, cid string) (client.WhereResult, error)
	WhereCached(ctx context.Context, cid string) (client.WhereResult, error)
	RemoveWith(ctx context.Context, req client.RemoveRequest) (client.RemoveResult, error)
}

// Configs are the settings the remote takes at initremote/enableremote.
var Configs = []annexremote.ConfigSetting{
	{Name: "home", Description: "deprecated, shared by every clone: prefer git config annex-swarm.home or $ANNEX_SWARM_HOME on each host, which win over it"},
}

// Backend implements annexremote.Backend on a local daemon.
type Backend struct {
	// Connect returns the daemon for a home folder ("" = the default home).
	Connect func(home string) (Daemon, string, error)
	// GitConfig reads a git config key of the repository; nil runs
	// `git config --get` in the working directory.
	GitConfig func(ctx context.Context, key string) (string, error)

	mu       sync.Mutex
	d        Daemon
	home     string
	homeFrom string
	roots    map[string]string // key → CID this process set or read (see state)
}

// maxKnownRoots bounds the key states a backend remembers; when full it
// forgets them all and asks git-annex again.
const maxKnownRoots = 1 << 16

// state returns key's state (its content's CID, "" for none). A CID this
// process set or read before is remembered rather than asked for again: a
// GETSTATE is a round trip through git-annex's branch code (0.28 ms, a
// third of a small REMOVE), and a remembered CID can only make the remote
// ask the daemon about a content, which answers from what the members
// hold. An empty state is never remembered, so a key another git-annex
// process stores meanwhile is seen (docs/ANNEX-REMOTE.md "Key state").
func (b *Backend) state(ctx context.Context, key string) (string, error) {
	b.mu.Lock()
	root, ok := b.roots[key]
	b.mu.Unlock()
	if ok {
		return root, nil
	}
	root, err := annexremote.GetState(ctx, key)
	if err == nil && root != "" {
		b.remember(key, root)
	}
	return root, err
}

// setState records key's state with git-annex and remembers it.
func (b *Backend) setState(ctx context.Context, key, root string) error {
	b.remember(key, root)
	return annexremote.SetState(ctx, key, root)
}

// remember keeps key's CID; an empty one forgets the key.
func (b *Backend) remember(key, root string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if root == "" {
		delete(b.roots, key)
		return
	}
	if b.roots == nil || len(b.roots) >= maxKnownRoots {
		b.roots = map[string]string{}
	}
	b.roots[key] = root
}

// New returns a backend that connects through the control API client.
func New() *Backend {
	return &Backend{Connect: func(dir string) (Daemon, string, error) {
		h, err := home.Resolve(dir)
		if err != nil {
			return nil, "", err
		}
		return client.New(h.Dir), h.Dir, nil
	}}
}

// InitRemote checks that the daemon runs and has joined a swarm. It changes
// nothing, so running it again (enableremote) is harmless.
func (b *Backend) InitRemote(ctx context.Context, cfg annexremote.Config) error {
	return b.Prepare(ctx, cfg)
}

// Prepare connects to this host's daemon (see chooseHome).
func (b *Backend) Prepare(ctx context.Context, cfg annexremote.Config) error {
	dir, from, err := b.chooseHome(ctx, cfg)
	if err != nil {
		return err
	}
	d, h, err := b.Connect(dir)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx)
	if err != nil {
		return fmt.Errorf("%w (home from %s)", err, from)
	}
	if st.Swarm == nil {
		return fmt.Errorf("annex-swarmd for %s has joined no swarm (annex-swarm --home %s join RULES)", h, h)
	}
	b.mu.Lock()
	b.d, b.home, b.homeFrom = d, h, from
	b.mu.Unlock()
	return nil
}

func (b *Backend) daemon() Daemon {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.d
}

// Store puts file into the swarm; the daemon answers once copies_min members
// hold verified copies. The content's CID is kept as the key's state.
func (b *Backend) Store(ctx context.Context, key, file string, progress annexremote.ProgressFunc) error {
	res, err := b.daemon().Put(ctx, client.PutRequest{Path: file, Key: key}, func(p client.Progress) { progress(p.Bytes) })
	if err != nil {
		return err
	}
	return b.setState(ctx, key, res.CID)
}

// Retrieve fetches the content of key (from many members at once) and checks
// it against the key's size and hash before success.
func (b *Backend) Retrieve(ctx context.Context, key, file string, progress annexremote.ProgressFunc) error {
	kc, err := parseKey(key)
	if err != nil {
		return err
	}
	root, err := b.state(ctx, key)
	if err != nil {
		return err
	}
	if root == "" {
		return fmt.Errorf("this repository has no record of %s in the swarm", key)
	}
	res, err := b.daemon().Get(ctx, client.GetRequest{CID: root, Path: file, NoSync: true, Hash: kc.hashName},
		func(p client.Progress) { progress(p.Bytes) })
	if err != nil {
		return err
	}
	// The daemon hashed what it wrote; a daemon that did not is checked by
	// reading the file again.
	if kc.digest != "" && res.Digest != "" {
		err = kc.verifyDigest(file, res.Digest)
	} else {
		err = kc.verifyFile(file)
	}
	if err != nil {
		os.Remove(file)
		return err
	}
	return nil
}

// CheckPresent is SUCCESS only when copies_min members hold verified copies,
// FAILURE only when the swarm definitely lacks the content (or this
// repository never stored it: see docs/ANNEX-REMOTE.md "Key state"), and
// UNKNOWN otherwise.
func (b *Backend) CheckPresent(ctx context.Context, key string) (annexremote.Presence, error) {
	root, err := b.state(ctx, key)
	if err != nil {
		return annexremote.Unknown(err.Error()), nil
	}
	if root == "" {
		return annexremote.Absent, nil
	}
	w, err := b.daemon().Where(ctx, root)
	if err != nil {
		return annexremote.Unknown(err.Error()), nil
	}
	switch {
	case w.Copies >= max(w.CopiesMin, 1):
		return annexremote.Present, nil
	case w.Copies == 0 && w.Unreachable == 0:
		return annexremote.Absent, nil
	}
	return annexremote.Unknown(fmt.Sprintf("%d of %d required copies verified, %d members unreachable", w.Copies, w.CopiesMin, w.Unreachable)), nil
}

// Remove removes the content from every member; content already gone counts
// as removed.
func (b *Backend) Remove(ctx context.Context, key string) error {
	root, err := b.state(ctx, key)
	if err != nil {
		return err
	}
	if root == "" {
		return nil
	}
	// git-annex needs no count of the holders: no survey first.
	if _, err := b.daemon().RemoveWith(ctx, client.RemoveRequest{CID: root, NoSurvey: true}); err != nil {
		return err
	}
	return b.setState(ctx, key, "")
}

// Whereis names the members holding the key, from the daemon's knowledge.
func (b *Backend) Whereis(ctx context.Context, key string) (string, error) {
	root, err := b.state(ctx, key)
	if err != nil || root == "" {
		return "", err
	}
	w, err := b.daemon().WhereCached(ctx, root)
	if err != nil {
		return "", err
	}
	names := make([]string, 0, len(w.Holders))
	for _, h := range w.Holders {
		names = append(names, h.Name)
	}
	return strings.Join(names, " "), nil
}

// Info describes the swarm for `git annex info`.
func (b *Backend) Info(ctx context.Context) ([]annexremote.InfoField, error) {
	st, err := b.daemon().Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.Swarm == nil {
		return nil, errors.New("no swarm joined")
	}
	connected := 0
	for _, m := range st.Members {
		if m.Connected {
			connected++
		}
	}
	return []annexremote.InfoField{
		{Name: "swarm", Value: st.Swarm.Name},
		{Name: "swarm id", Value: st.Swarm.ID},
		{Name: "rules version", Value: strconv.FormatUint(st.Swarm.Version, 10)},
		{Name: "members", Value: fmt.Sprintf("%d (%d connected)", len(st.Members), connected)},
		{Name: "daemon home", Value: b.home + " (from " + b.homeFrom + ")"},
	}, nil
}
