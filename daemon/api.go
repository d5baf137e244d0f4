package daemon

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/annex-swarm/annex-swarm/chunk"
	"github.com/annex-swarm/annex-swarm/daemon/activity"
	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// maxRequestBody bounds a control request's JSON body.
const maxRequestBody = 2 << 20

// progressEvery is the least time between two progress events of a stream.
const progressEvery = 100 * time.Millisecond

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/id", d.track(d.handleID))
	mux.HandleFunc("GET /v1/status", d.track(d.handleStatus))
	mux.HandleFunc("POST /v1/fsck", d.track(d.handleFsck))
	mux.HandleFunc("POST /v1/put", d.track(d.handlePut))
	mux.HandleFunc("POST /v1/putmany", d.track(d.handlePutMany))
	mux.HandleFunc("POST /v1/get", d.track(d.handleGet))
	mux.HandleFunc("POST /v1/join", d.track(d.handleJoin))
	mux.HandleFunc("POST /v1/rules", d.track(d.handlePushRules))
	mux.HandleFunc("POST /v1/leave", d.track(d.handleLeave))
	mux.HandleFunc("POST /v1/where", d.track(d.handleWhere))
	mux.HandleFunc("POST /v1/rm", d.track(d.handleRemove))
	return mux
}

// track counts a request as in flight for the clean stop.
func (d *Daemon) track(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.inflight.Add(1)
		defer d.inflight.Done()
		defer d.obs.latency.Observe(r.Pattern, time.Now())
		h(w, r)
	}
}

func (d *Daemon) handleID(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.id())
}

func (d *Daemon) id() client.ID {
	out := client.ID{PeerID: d.host.ID().String()}
	for _, a := range d.host.Addrs() {
		out.Addrs = append(out.Addrs, a.String())
	}
	return out
}

func (d *Daemon) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, d.status())
}

// status is the daemon's state, for the control API, the web page and the metrics.
func (d *Daemon) status() client.Status {
	st := d.store.Stats()
	lim := d.limits()
	return d.observed(client.Status{
		PeerID:         d.host.ID().String(),
		Version:        Version,
		Swarm:          swarmInfo(d.members.Current()),
		Members:        d.memberStatus(),
		ConnectedPeers: len(d.host.Network().Peers()),
		Store: client.StoreStatus{
			Used: st.Used, Limit: st.Limit, Chunks: st.Chunks, Manifests: st.Manifests, Corrupt: st.Corrupt,
			Backend: d.cfg.Store.describe(), Error: errorString(d.store.Health()),
		},
		BytesSent:          d.bytesSent.Load(),
		BytesReceived:      d.bytesReceived.Load(),
		RefusedConnections: d.gater.Refused(),
		Limits:             client.LimitsStatus{Storage: lim.Storage, Upload: lim.Upload, Download: lim.Download},
		Replication:        d.replicationStatus(),
		Audit:              d.auditStatus(),
		Reachability:       d.nat.ReachabilityString(),
		Relay:              d.relayStatus(),
	})
}

func (d *Daemon) handleFsck(w http.ResponseWriter, r *http.Request) {
	var req client.FsckRequest
	if !readJSON(w, r, &req) {
		return
	}
	rep, err := d.store.Fsck(r.Context(), req.Repair)
	if err != nil {
		writeError(w, statusFor(err), fmt.Errorf("verifying the store: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, fsckResult(rep))
}

func (d *Daemon) handlePut(w http.ResponseWriter, r *http.Request) {
	streamed(w, r, &d.obs.transfers, "put", func(q client.PutRequest) string { return q.Path }, d.put)
}

// streamed serves a request that names a local file: the path must be
// absolute; the operation's progress and its result or error are streamed.
func streamed[Req, Res any](w http.ResponseWriter, r *http.Request, transfers *activity.Tracker, name string, pathOf func(Req) string,
	op func(context.Context, Req, func(client.Progress)) (Res, error)) {
	var req Req
	if !readJSON(w, r, &req) {
		return
	}
	if p := pathOf(req); !filepath.IsAbs(p) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%s: path %q is not absolute", name, p))
		return
	}
	s := newStream(w)
	tr := transfers.Begin(name, pathOf(req))
	defer tr.End()
	res, err := op(r.Context(), req, func(p client.Progress) { tr.Update(p); s.progress(p) })
	s.finish(res, err)
}

func (d *Daemon) put(ctx context.Context, req client.PutRequest, progress func(client.Progress)) (client.PutResult, error) {
	f, err := os.Open(req.Path)
	if err != nil {
		return client.PutResult{}, fmt.Errorf("put: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return client.PutResult{}, fmt.Errorf("put: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return client.PutResult{}, fmt.Errorf("put: %s is not a regular file", req.Path)
	}
	// Removed contents held here are not deleted while the put may be
	// storing one of them again (replicate.Replicator.BeginPut).
	defer d.repl.BeginPut()()
	if d.putsFromFile(fi.Size()) {
		return d.putFromFile(ctx, req, f, fi, progress)
	}
	cr := &countingReader{r: f, total: fi.Size(), progress: progress}
	res, err := d.putContent(ctx, cr, fi.Size(), req.Key, progress)
	if err != nil {
		return client.PutResult{}, fmt.Errorf("put %s: %w", req.Path, err)
	}
	return res, nil
}

// putContent stores a content read from r (size bytes, git-annex key key)
// under the adopted rules, announces it and seeds it until its success
// threshold: a put on this member of a content not served from its file.
func (d *Daemon) putContent(ctx context.Context, r io.Reader, size int64, key string, progress func(client.Progress)) (client.PutResult, error) {
	if d.placesWhileStoring(size) {
		return d.putSmall(ctx, r, size, key, progress)
	}
	root, err := d.storeContent(ctx, r, size, key)
	if err != nil {
		return client.PutResult{}, err
	}
	d.log.Info("content stored", "cid", root, "size", size, "key", key)
	d.announce(root)
	res := client.PutResult{CID: root.String(), Size: size}
	if res.Copies, err = d.seed(ctx, root, progress); err != nil {
		return client.PutResult{}, fmt.Errorf("stored here, but: %w", err)
	}
	return res, nil
}

func (d *Daemon) handleGet(w http.ResponseWriter, r *http.Request) {
	streamed(w, r, &d.obs.transfers, "get", func(q client.GetRequest) string { return q.Path }, d.get)
}

func (d *Daemon) get(ctx context.Context, req client.GetRequest, progress func(client.Progress)) (client.GetResult, error) {
	asked, err := chunk.ParseCID(req.CID)
	if err != nil {
		return client.GetResult{}, fmt.Errorf("get: %w", err)
	}
	// A root re-coded since is fetched as its successor, each step of the
	// chain checked (docs/ERASURE.md "Re-coding").
	root, err := d.repl.ResolveChecked(ctx, asked)
	if err != nil {
		return client.GetResult{}, fmt.Errorf("get %s: %w", asked, err)
	}
	var h hash.Hash
	if req.Hash != "" {
		known, ok := client.Hashes[req.Hash]
		if !ok {
			return client.GetResult{}, fmt.Errorf("get: unknown hash %q", req.Hash)
		}
		h = known.New()
	}
	if d.getsDirect(ctx, root) {
		res, err := d.getDirect(ctx, req, root, h, progress)
		if err != nil {
			return client.GetResult{}, fmt.Errorf("get %s: %w", root, err)
		}
		return res, nil
	}
	if err := d.ensureLocal(ctx, root, progress); err != nil {
		return client.GetResult{}, fmt.Errorf("get %s: %w", root, err)
	}
	m, err := d.store.Manifest(ctx, root)
	if err != nil {
		return client.GetResult{}, fmt.Errorf("get %s: %w", root, err)
	}
	err = writeFileAtomicFunc(req.Path, 0o644, !req.NoSync, func(w io.Writer) error {
		var out io.Writer = &countingWriter{w: w, total: m.Size, progress: progress}
		if h != nil {
			out = hashingWriter{w: out, h: h}
		}
		_, err := d.store.WriteTo(ctx, root, out)
		return err
	})
	if err != nil {
		return client.GetResult{}, fmt.Errorf("get %s: %w", root, err)
	}
	res := client.GetResult{CID: root.String(), Size: m.Size}
	if h != nil {
		res.Digest = hex.EncodeToString(h.Sum(nil))
	}
	return res, nil
}

// ensureLocal makes the whole content root local, fetching what is missing
// from the swarm (many members at once).
func (d *Daemon) ensureLocal(ctx context.Context, root cid.Cid, progress func(client.Progress)) error {
	if _, err := d.store.Manifest(ctx, root); err == nil {
		missing, err := d.store.Missing(ctx, root)
		if err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
	} else if !errors.Is(err, chunk.ErrNotFound) {
		return err
	}
	if d.members.Current() == nil {
		return fmt.Errorf("not in the local store, and no swarm joined to fetch it from")
	}
	if err := d.xchg.Fetch(ctx, root, fetchProgress(progress)); err != nil {
		return fmt.Errorf("fetching from the swarm: %w", err)
	}
	d.announce(root)
	return nil
}

func fsckResult(rep chunk.FsckReport) client.FsckResult {
	out := client.FsckResult{Checked: rep.Checked, Orphaned: rep.Orphans, Repaired: rep.Repaired,
		CountersWrong: rep.Counters, Corrupt: []string{}, Unreferenced: []string{}, Incomplete: []string{}}
	if out.Orphaned == nil {
		out.Orphaned = []string{}
	}
	for _, c := range rep.Corrupt {
		out.Corrupt = append(out.Corrupt, c.String())
	}
	for _, c := range rep.Unreferenced {
		out.Unreferenced = append(out.Unreferenced, c.String())
	}
	for _, c := range rep.Incomplete {
		out.Incomplete = append(out.Incomplete, c.String())
	}
	return out
}

// stream writes an NDJSON answer: progress events, then a result or an error.
type stream struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	enc  *json.Encoder
	last time.Time
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &stream{w: w, enc: json.NewEncoder(w)}
}

// progress sends a progress event, at most one per progressEvery, and always
// the final one (Bytes == Total, or Files == FilesTotal).
func (s *stream) progress(p client.Progress) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	final := (p.Total > 0 && p.Bytes >= p.Total) || (p.FilesTotal > 0 && p.Files >= p.FilesTotal)
	if now.Sub(s.last) < progressEvery && !final {
		return
	}
	s.last = now
	s.send(map[string]any{"progress": p})
}

func (s *stream) finish(result any, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.send(map[string]any{"error": oneLineError(err)})
		return
	}
	s.send(map[string]any{"result": result})
}

func (s *stream) send(v any) {
	if err := s.enc.Encode(v); err != nil {
		return // the client went away; the operation's ctx tells the rest
	}
	if f, ok := s.w.(http.Flusher); ok {
		f.Flush()
	}
}

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("decoding request: %w", err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // a write error means the client left
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": oneLineError(err)})
}

// statusFor maps well-known errors to HTTP statuses.
func statusFor(err error) int {
	switch {
	case errors.Is(err, chunk.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, chunk.ErrNoSpace):
		return http.StatusInsufficientStorage
	}
	return http.StatusInternalServerError
}

// handleRemove removes a content from the swarm. Unless asked not to, it
// first asks the members which of them hold it (the replicator's Where), so
// that the answer can say when no member had it at all.
func (d *Daemon) handleRemove(w http.ResponseWriter, r *http.Request) {
	var req client.RemoveRequest
	if !readJSON(w, r, &req) {
		return
	}
	root, err := chunk.ParseCID(req.CID)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("rm: %w", err))
		return
	}
	out := client.RemoveResult{CID: root.String()}
	// A re-coded root is held as its successor: count those holders
	// (Remove removes the whole chain), of shard sets for a coded one.
	held := d.repl.Resolve(root)
	if !req.NoSurvey {
		out.Surveyed, out.Holders, out.Unreachable = d.countHolders(r.Context(), held)
	}
	if err := d.repl.Remove(r.Context(), root); err != nil {
		writeError(w, statusFor(err), fmt.Errorf("rm: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// countHolders asks the members how many hold root (shard sets for a coded
// content); ok is false when they could not be asked.
func (d *Daemon) countHolders(ctx context.Context, root cid.Cid) (ok bool, holders, unreachable int) {
	if ch, coded, err := d.repl.WhereCoded(ctx, root); err == nil && coded {
		return true, len(ch.Sets), ch.Unreachable
	}
	if h, err := d.repl.Where(ctx, root); err == nil {
		return true, len(h.Holders), h.Unreachable
	}
	return false, 0, 0
}
