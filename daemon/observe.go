package daemon

import (
	"context"
	"fmt"

	"github.com/annex-swarm/annex-swarm/daemon/activity"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/daemon/metrics"
	"github.com/annex-swarm/annex-swarm/daemon/web"
)

// observers are what lets a person or a monitoring system watch the daemon:
// the transfers in flight, the control-API latencies, the web status page
// and the Prometheus endpoint (docs/OBSERVING.md).
type observers struct {
	transfers  activity.Tracker
	latency    *metrics.Latency // set before the control API serves
	webURL     string           // with the token; empty when [web] listen is unset
	metricsURL string           // empty when [metrics] listen is unset
}

// startObservers starts the web page and the metrics endpoint that the
// config asks for; they stop when ctx ends. It runs before the control API
// serves, so the addresses are set before any status is read.
func (d *Daemon) startObservers(ctx context.Context) error {
	d.obs.latency = metrics.NewLatency()
	var serve []func(context.Context)
	if d.cfg.WebListen != "" {
		ws, err := web.Listen(web.Options{
			Addr:      d.cfg.WebListen,
			Status:    d.status,
			SaveToken: func(tok []byte) error { return WriteFileAtomic(d.home.WebTokenPath(), tok, 0o600) },
			Logger:    d.log.With("component", "web"),
		})
		if err != nil {
			return fmt.Errorf("starting the web status page: %w", err)
		}
		d.obs.webURL = ws.URL()
		serve = append(serve, ws.Serve)
		d.log.Info("web status page serving", "addr", d.cfg.WebListen, "token_file", d.home.WebTokenPath())
	}
	if d.cfg.MetricsListen != "" {
		ms, err := metrics.Listen(d.cfg.MetricsListen, metrics.Registry(d.status, d.obs.latency), d.log.With("component", "metrics"))
		if err != nil {
			return fmt.Errorf("starting the metrics endpoint: %w", err)
		}
		d.obs.metricsURL = ms.URL()
		serve = append(serve, ms.Serve)
		d.log.Info("metrics serving", "url", ms.URL())
	}
	// Serve only once both addresses are set: a request reads them.
	for _, run := range serve {
		d.bg.Add(1)
		go func() { defer d.bg.Done(); run(ctx) }()
	}
	return nil
}

// observed adds to a status what the observers know: the transfers in
// flight, the page and metrics addresses, and each member's limits from the
// adopted definition.
func (d *Daemon) observed(st client.Status) client.Status {
	st.Transfers = d.obs.transfers.Snapshot()
	if d.obs.webURL != "" {
		st.Web = &client.WebInfo{URL: d.obs.webURL}
	}
	st.MetricsURL = d.obs.metricsURL
	if def := d.members.Current(); def != nil {
		for i, m := range st.Members {
			for _, dm := range def.Members {
				if dm.Peer.String() == m.PeerID {
					st.Members[i].Limits = &client.LimitsStatus{Storage: dm.Limits.Storage, Upload: dm.Limits.Upload, Download: dm.Limits.Download}
				}
			}
		}
	}
	return st
}
