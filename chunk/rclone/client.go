package rclone

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// This file makes the remote-control calls, with bounded retries.

// Retries of one call: attempts, from retryMin doubling to retryMax between
// them; about 12 s in all before a call fails.
const (
	attempts = 6
	retryMin = 250 * time.Millisecond
	retryMax = 4 * time.Second
)

// maxReply bounds the reply to any call but a listing; maxListing bounds a
// listing (about 150 bytes an object: some 3 million objects).
const (
	maxReply   = 1 << 20
	maxListing = 512 << 20
)

// rcError is a call that rclone answered with an error.
type rcError struct {
	path   string
	status int
	msg    string
}

func (e *rcError) Error() string {
	return fmt.Sprintf("rclone %s: %s (HTTP %d)", e.path, e.msg, e.status)
}

// transient reports whether an error may pass if the call is made again:
// rclone unreachable (restarting), a server error, a rate limit.
func transient(err error) bool {
	var rc *rcError
	if errors.As(err, &rc) {
		return rc.status >= 500 || rc.status == http.StatusTooManyRequests || rc.status == http.StatusUnauthorized
	}
	return !errors.Is(err, errTooLong) && !errors.Is(err, context.Canceled)
}

// notFound reports whether rclone said the object or folder does not exist.
func notFound(err error) bool {
	var rc *rcError
	return errors.As(err, &rc) && rc.status == http.StatusNotFound
}

// attemptTimeout bounds one attempt of a call; retryFor bounds the time
// after which no new attempt starts.
const (
	attemptTimeout = 30 * time.Second
	retryFor       = time.Minute
)

// retry runs op until it succeeds, fails for good, or attempts (or
// retryFor) are spent. Each attempt has attemptTimeout.
func retry(ctx context.Context, op func(ctx context.Context, ep endpoint) error, r *rcd) error {
	wait := retryMin
	start := time.Now()
	var err error
	for i := range attempts {
		var ep endpoint
		ep, err = r.endpoint()
		if err == nil {
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			err = op(actx, ep)
			// Read before cancel, which sets actx.Err for every attempt:
			// only an attempt that ran out of time had no answer.
			timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
			cancel()
			if err != nil && ctx.Err() == nil && timedOut {
				err = fmt.Errorf("no answer in %v: %w", attemptTimeout, err)
			}
		}
		if err == nil || !transient(err) || i == attempts-1 || time.Since(start) > retryFor {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (after: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
	return err
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}

// call POSTs in as JSON to an rc method and decodes the reply into out
// (which may be nil), reading at most limit bytes of it.
func call(ctx context.Context, ep endpoint, method string, in, out any, limit int64) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+"/"+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return do(req, ep, method, out, limit)
}

// do sends req with the rcd's credentials and decodes the JSON reply.
func do(req *http.Request, ep endpoint, method string, out any, limit int64) error {
	req.SetBasicAuth(ep.user, ep.pass)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("rclone %s: %w", method, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("rclone %s: reading the reply: %w", method, err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("rclone %s: reply over %d bytes", method, limit)
	}
	if resp.StatusCode != http.StatusOK {
		return replyError(method, resp.StatusCode, b)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("rclone %s: decoding the reply: %w", method, err)
	}
	return nil
}

// replyError makes an rcError of an error reply, whose body is
// {"error": "...", "status": N} or anything else.
func replyError(method string, status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		msg = e.Error
	}
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	return &rcError{path: method, status: status, msg: msg}
}

// upload sends data as the file name in folder dir of fs with
// operations/uploadfile; rclone answers once the remote has it.
func upload(ctx context.Context, ep endpoint, fs, dir, name string, data []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, err := mw.CreateFormFile("file0", name)
	if err == nil {
		_, err = part.Write(data)
	}
	if err == nil {
		err = mw.Close()
	}
	if err != nil {
		return err
	}
	q := url.Values{"fs": {fs}, "remote": {dir}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.base+"/operations/uploadfile?"+q.Encode(), &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	return do(req, ep, "operations/uploadfile", nil, maxReply)
}

// download reads the file name of fs through --rc-serve, at most limit
// bytes; errTooLong if it is longer.
func download(ctx context.Context, ep endpoint, fs, name string, limit int64) ([]byte, error) {
	u := ep.base + "/" + url.PathEscape("["+fs+"]") + "/" + name
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(ep.user, ep.pass)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rclone serve: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		return nil, replyError("serve", resp.StatusCode, b)
	}
	if resp.ContentLength > limit {
		return nil, errTooLong
	}
	n := limit
	if resp.ContentLength >= 0 {
		n = resp.ContentLength
	}
	buf := bytes.NewBuffer(make([]byte, 0, n))
	if _, err := io.Copy(buf, io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, fmt.Errorf("rclone serve: reading %s: %w", name, err)
	}
	if int64(buf.Len()) > limit {
		return nil, errTooLong
	}
	if resp.ContentLength >= 0 && int64(buf.Len()) != resp.ContentLength {
		return nil, fmt.Errorf("rclone serve: %s: %d of %d bytes", name, buf.Len(), resp.ContentLength)
	}
	return buf.Bytes(), nil
}

var errTooLong = errors.New("object longer than allowed")
