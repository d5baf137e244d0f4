// Package metrics exports a daemon's state to Prometheus.
//
// Everything but the control-API latencies is read at scrape time from the
// daemon's status (the same snapshot `annex-swarm status --json` prints), so
// that a metric exists here only when the daemon really measures it.
// docs/OBSERVING.md lists the metrics and the ones the daemon cannot give yet.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// Namespace prefixes every metric name.
const Namespace = "annex_swarm"

// StatusFunc returns the daemon's current status.
type StatusFunc func() client.Status

// Latency is the control API's request latency histogram, by endpoint
// (the route pattern, e.g. "POST /v1/put").
type Latency struct {
	h *prometheus.HistogramVec
}

// NewLatency returns an empty latency histogram.
func NewLatency() *Latency {
	return &Latency{h: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace,
		Name:      "control_request_duration_seconds",
		Help:      "Time to answer a control API request (a streamed put or get counts until its result), by endpoint.",
		Buckets:   []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 300},
	}, []string{"endpoint"})}
}

// Observe records one request to endpoint that started at start.
func (l *Latency) Observe(endpoint string, start time.Time) {
	if endpoint == "" {
		endpoint = "unmatched"
	}
	l.h.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}

// Registry builds a registry with the daemon's metrics, the latencies, and
// the Go runtime and process collectors.
func Registry(status StatusFunc, lat *Latency) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(status), lat.h,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Server serves /metrics on a loopback address.
type Server struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger
}

// Listen binds addr (checked to be loopback by the config) and prepares the
// server; Serve runs it.
func Listen(addr string, reg *prometheus.Registry, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	return &Server{ln: ln, log: log, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

// URL is the metrics endpoint's address.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + "/metrics" }

// Serve runs until ctx ends.
func (s *Server) Serve(ctx context.Context) {
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.srv.Shutdown(shut)
	}()
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("metrics server stopped", "err", err)
	}
}
