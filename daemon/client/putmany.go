package client

import "context"

// MaxPutMany is the most files one PutMany request may name (the request
// body is bounded at 2 MiB: 4096 paths of up to ~500 bytes).
const MaxPutMany = 4096

// PutManyRequest asks the daemon to store many local files in one request
// (POST /v1/putmany); each is put as a PutRequest is.
type PutManyRequest struct {
	Files []PutRequest `json:"files"`
}

// PutManyItem is the outcome of one file of a PutMany: its PutResult, or
// Error when that file failed (the others are put all the same).
type PutManyItem struct {
	Path   string `json:"path"`
	CID    string `json:"cid,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Copies int    `json:"copies,omitempty"`
	Error  string `json:"error,omitempty"`
}

// PutManyResult lists the outcome of each file, in the request's order.
type PutManyResult struct {
	Files []PutManyItem `json:"files"`
}

// PutMany stores many local files in one request; progress reports the
// files done (Progress.Files of Progress.FilesTotal).
func (c *Client) PutMany(ctx context.Context, req PutManyRequest, progress func(Progress)) (PutManyResult, error) {
	var r PutManyResult
	return r, c.stream(ctx, "/v1/putmany", req, progress, &r)
}
