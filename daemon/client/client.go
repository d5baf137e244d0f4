// Package client is the Go client of annex-swarmd's control API: HTTP+JSON on
// the Unix socket HOME/control.sock. The CLI and the git-annex special remote
// both use it.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/annex-swarm/annex-swarm/internal/home"
)

// ErrNotRunning is returned when no daemon answers on the home's control socket.
var ErrNotRunning = errors.New("annex-swarmd is not running")

// maxResponse bounds one JSON response or one line of a streamed response.
const maxResponse = 16 << 20

// APIError is an error the daemon reported for a request.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

// Client talks to one daemon.
type Client struct {
	home string
	http *http.Client
	// probe marks the client lostAnswer uses to check on the daemon; its
	// own broken answers are plain errors.
	probe bool
}

// New returns a client for the daemon of the home folder dir.
func New(dir string) *Client {
	sock := home.Home{Dir: dir}.SocketPath()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableCompression: true,
	}
	return &Client{home: dir, http: &http.Client{Transport: tr}}
}

// ErrStopped is returned when the daemon stopped while it was answering.
var ErrStopped = errors.New("annex-swarmd stopped")

// stopProbe bounds the check whether the daemon still answers.
const stopProbe = 2 * time.Second

// lostAnswer is the error for an answer to path that broke off with err: when
// the daemon no longer answers, it says that the daemon stopped and where its
// log is (home.ReadDaemonInfo); otherwise it is err itself.
func (c *Client) lostAnswer(path string, err error) error {
	if c.probe {
		return fmt.Errorf("reading answer to %s: %w", path, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopProbe)
	defer cancel()
	p := New(c.home)
	p.probe = true
	if _, perr := p.ID(ctx); perr == nil {
		return fmt.Errorf("reading answer to %s: %w", path, err)
	}
	op := strings.TrimPrefix(path, "/v1/")
	if di, ok := home.ReadDaemonInfo(home.Home{Dir: c.home}); ok {
		return fmt.Errorf("%w (pid %d) while answering %s for %s; its log: %s", ErrStopped, di.PID, op, c.home, di.Log)
	}
	return fmt.Errorf("%w while answering %s for %s; see its log (where its standard error went)", ErrStopped, op, c.home)
}

// NotRunningError is the one-line message shown when the daemon is down.
func NotRunningError(home string) error {
	return fmt.Errorf("%w for %s; start it with: annex-swarmd --home %s", ErrNotRunning, home, home)
}

// ID returns the daemon's peer ID and listen addresses.
func (c *Client) ID(ctx context.Context) (ID, error) {
	var r ID
	return r, c.call(ctx, http.MethodGet, "/v1/id", nil, &r)
}

// Status returns the daemon's state.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var r Status
	return r, c.call(ctx, http.MethodGet, "/v1/status", nil, &r)
}

// Fsck verifies the whole store.
func (c *Client) Fsck(ctx context.Context, req FsckRequest) (FsckResult, error) {
	var r FsckResult
	return r, c.call(ctx, http.MethodPost, "/v1/fsck", req, &r)
}

// Put stores the file at req.Path; progress, when not nil, is called as bytes
// are stored.
func (c *Client) Put(ctx context.Context, req PutRequest, progress func(Progress)) (PutResult, error) {
	var r PutResult
	return r, c.stream(ctx, "/v1/put", req, progress, &r)
}

// Get writes the content req.CID to req.Path, fetching it when not local.
func (c *Client) Get(ctx context.Context, req GetRequest, progress func(Progress)) (GetResult, error) {
	var r GetResult
	return r, c.stream(ctx, "/v1/get", req, progress, &r)
}

// Join adopts a signed definition that lists this host.
func (c *Client) Join(ctx context.Context, signed []byte) (RulesResult, error) {
	var r RulesResult
	return r, c.call(ctx, http.MethodPost, "/v1/join", RulesRequest{Signed: string(signed)}, &r)
}

// PushRules hands a newer version of the adopted definition to the daemon,
// which spreads it to the other members.
func (c *Client) PushRules(ctx context.Context, signed []byte) (RulesResult, error) {
	var r RulesResult
	return r, c.call(ctx, http.MethodPost, "/v1/rules", RulesRequest{Signed: string(signed)}, &r)
}

// Leave makes the daemon leave its swarm.
func (c *Client) Leave(ctx context.Context) error {
	return c.call(ctx, http.MethodPost, "/v1/leave", struct{}{}, nil)
}

// call does a request with a JSON body (nil for none) and decodes the JSON
// answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	resp, err := c.do(ctx, method, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxResponse)
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
			return c.lostAnswer(path, err)
		}
		return fmt.Errorf("decoding answer to %s: %w", path, err)
	}
	return nil
}

// stream does a request whose answer is NDJSON progress events ending with a
// result or an error.
func (c *Client) stream(ctx context.Context, path string, in any, progress func(Progress), out any) error {
	resp, err := c.do(ctx, http.MethodPost, path, in)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeError(resp.StatusCode, io.LimitReader(resp.Body, maxResponse))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), maxResponse)
	for sc.Scan() {
		var ev struct {
			Progress *Progress       `json:"progress"`
			Result   json.RawMessage `json:"result"`
			Error    string          `json:"error"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return fmt.Errorf("decoding answer to %s: %w", path, err)
		}
		switch {
		case ev.Error != "":
			return &APIError{Status: http.StatusOK, Message: ev.Error}
		case ev.Result != nil:
			if err := json.Unmarshal(ev.Result, out); err != nil {
				return fmt.Errorf("decoding result of %s: %w", path, err)
			}
			return nil
		case ev.Progress != nil && progress != nil:
			progress(*ev.Progress)
		}
	}
	if err := sc.Err(); err != nil {
		return c.lostAnswer(path, err)
	}
	return c.lostAnswer(path, errors.New("the daemon closed the stream before the result"))
}

func (c *Client) do(ctx context.Context, method, path string, in any) (*http.Response, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("encoding request to %s: %w", path, err)
		}
		body = bytes.NewReader(b)
	}
	u := url.URL{Scheme: "http", Host: "annex-swarmd", Path: path}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("building request %s: %w", path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if isNotRunning(err) {
			return nil, NotRunningError(c.home)
		}
		if ctx.Err() == nil {
			return nil, c.lostAnswer(path, err)
		}
		return nil, fmt.Errorf("calling annex-swarmd %s: %w", path, err)
	}
	return resp, nil
}

func isNotRunning(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED)
}

func decodeError(status int, body io.Reader) error {
	var e errorBody
	if err := json.NewDecoder(body).Decode(&e); err != nil || e.Error == "" {
		return &APIError{Status: status, Message: fmt.Sprintf("annex-swarmd answered %d", status)}
	}
	return &APIError{Status: status, Message: e.Error}
}
