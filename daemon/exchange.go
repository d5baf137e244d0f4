package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/rules"
	"github.com/annex-swarm/annex-swarm/swarm/exchange"
)

// newExchange wires the chunk exchange to the store, the membership and the
// daemon's traffic counters.
func (d *Daemon) newExchange() *exchange.Exchange {
	return exchange.New(exchange.Options{
		Host:          d.host,
		Store:         d.store,
		Logger:        d.log,
		Routing:       d.members.Routing,
		Members:       d.otherMembers,
		Sent:          &d.bytesSent,
		Received:      &d.bytesReceived,
		LastAnnounced: d.lastAnnounced,
		SetAnnounced: func(t time.Time) error {
			return WriteFileAtomic(d.announcedPath(), []byte(t.UTC().Format(time.RFC3339)+"\n"), 0o600)
		},
	})
}

// announcedPath is the file recording when every manifest held was last
// announced on the swarm DHT (docs/EXCHANGE.md "Discovery").
func (d *Daemon) announcedPath() string { return filepath.Join(d.home.Dir, "announced") }

// lastAnnounced reads announcedPath; zero when it does not exist.
func (d *Daemon) lastAnnounced() (time.Time, error) {
	b, err := readBounded(d.announcedPath(), maxAnnounced)
	if errors.Is(err, fs.ErrNotExist) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := parseAnnounced(b)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading %s: %w", d.announcedPath(), err)
	}
	return t, nil
}

// maxAnnounced bounds the announced file: one RFC 3339 line.
const maxAnnounced = 64

// parseAnnounced reads the announced file's content: one RFC 3339 time.
func parseAnnounced(b []byte) (time.Time, error) {
	if len(b) > maxAnnounced {
		return time.Time{}, fmt.Errorf("announced time of %d bytes, over %d", len(b), maxAnnounced)
	}
	return time.Parse(time.RFC3339, strings.TrimSpace(string(b)))
}

// otherMembers lists the members of the adopted definition but this host.
func (d *Daemon) otherMembers() []peer.ID {
	def := d.members.Current()
	if def == nil {
		return nil
	}
	var out []peer.ID
	for _, p := range def.Peers() {
		if peer.ID(p) != d.host.ID() {
			out = append(out, peer.ID(p))
		}
	}
	return out
}

// followSwarm points the exchange at the adopted swarm and its limits.
func (d *Daemon) followSwarm(def *rules.Definition) {
	if def == nil || def.ID.IsZero() {
		d.xchg.SetSwarm("")
		return
	}
	d.xchg.SetSwarm(def.ID.String())
	lim := d.limits()
	d.xchg.SetLimits(lim.Upload, lim.Download)
}

// announce puts a provider record for root on the swarm's DHT, in the
// background: a put does not wait on the network for it.
func (d *Daemon) announce(root cid.Cid) { d.xchg.Announce(root) }

// fetchProgress adapts the fetcher's progress to the control API's.
func fetchProgress(progress func(client.Progress)) func(exchange.FetchProgress) {
	return func(p exchange.FetchProgress) {
		progress(client.Progress{Bytes: p.Bytes, Total: p.Total, Sources: p.Sources})
	}
}
