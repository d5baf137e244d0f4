package daemon

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// Bulk put (issue 17, "Fast bulk work"): many files in one request, so
// that an import of many small files is not bound by one request, one
// connection and one wait for copies_min per file. Each file is stored
// and seeded as a single put does it; putManyParallel files at a time.

// putManyParallel bounds the files of one bulk put stored and seeded at
// once.
const putManyParallel = 8

func (d *Daemon) handlePutMany(w http.ResponseWriter, r *http.Request) {
	var req client.PutManyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Files) == 0 || len(req.Files) > client.MaxPutMany {
		writeError(w, http.StatusBadRequest, fmt.Errorf("put: %d files in one request, want 1 to %d", len(req.Files), client.MaxPutMany))
		return
	}
	for _, f := range req.Files {
		if !filepath.IsAbs(f.Path) {
			writeError(w, http.StatusBadRequest, fmt.Errorf("put: path %q is not absolute", f.Path))
			return
		}
	}
	s := newStream(w)
	res, err := d.putMany(r.Context(), req, s.progress)
	s.finish(res, err)
}

// putMany puts each file of req; a file that fails has its error in its
// result and does not stop the others. Progress reports the files done.
func (d *Daemon) putMany(ctx context.Context, req client.PutManyRequest, progress func(client.Progress)) (client.PutManyResult, error) {
	out := client.PutManyResult{Files: make([]client.PutManyItem, len(req.Files))}
	var mu sync.Mutex
	done := 0
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(putManyParallel, len(req.Files)) {
		wg.Go(func() {
			for i := range work {
				f := req.Files[i]
				item := client.PutManyItem{Path: f.Path}
				res, err := d.put(ctx, f, nil)
				if err != nil {
					item.Error = err.Error()
				} else {
					item.CID, item.Size, item.Copies = res.CID, res.Size, res.Copies
				}
				mu.Lock()
				out.Files[i] = item
				done++
				progress(client.Progress{Files: done, FilesTotal: len(req.Files)}) // in order
				mu.Unlock()
			}
		})
	}
feed:
	for i := range req.Files {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return client.PutManyResult{}, fmt.Errorf("put: %w", err)
	}
	return out, nil
}
