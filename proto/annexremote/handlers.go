package annexremote

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
)

// Request handlers, as specified in docs/ANNEX-REMOTE.md section "Requests".

// handle answers one request of job j. It returns an error only when the
// conversation cannot go on.
func (j *job) handle(ctx context.Context, msg string) error {
	req, err := ParseRequest(msg)
	if err != nil || req.Job != 0 {
		j.s.log.Warn("unsupported request", "job", j.id, "line", msg)
		return j.send("UNSUPPORTED-REQUEST")
	}
	j.s.log.Debug("request", "job", j.id, "name", req.Name)
	switch req.Name {
	case "INITREMOTE":
		return j.withConfig(ctx, "INITREMOTE", j.s.b.InitRemote)
	case "PREPARE":
		return j.prepare(ctx)
	case "LISTCONFIGS":
		return j.listConfigs()
	case "GETCOST":
		return j.send("COST", strconv.Itoa(j.s.opts.Cost))
	case "GETAVAILABILITY":
		return j.send("AVAILABILITY", string(j.s.opts.Availability))
	case "TRANSFER":
		return j.transfer(ctx, req.Args)
	case "CHECKPRESENT":
		return j.checkPresent(ctx, req.Args)
	case "REMOVE":
		return j.remove(ctx, req.Args)
	case "WHEREIS":
		return j.whereis(ctx, req.Args)
	case "GETINFO":
		return j.info(ctx)
	case "ERROR":
		return fmt.Errorf("job %d: %w: %s", j.id, ErrAnnexError, req.Args)
	}
	j.s.log.Debug("unsupported request", "job", j.id, "name", req.Name)
	return j.send("UNSUPPORTED-REQUEST")
}

// extensions records what git-annex offers and answers with what Serve
// implements. ASYNC takes effect for the next line read.
func (s *server) extensions(args string) error {
	offered := map[string]bool{}
	for _, e := range strings.Fields(args) {
		offered[e] = true
		s.offered.Store(e, struct{}{})
	}
	ours := []string{"EXTENSIONS"}
	// The extensions implemented, in the order they are announced.
	for _, e := range []string{"INFO", "ASYNC", "GETGITREMOTENAME"} {
		if e == "ASYNC" && s.opts.NoAsync {
			continue
		}
		ours = append(ours, e)
	}
	if offered["ASYNC"] && !s.opts.NoAsync {
		s.async.Store(true)
	}
	return s.w.WriteLine(strings.Join(ours, " "))
}

// withConfig runs f with a Config bound to this job and answers NAME-SUCCESS
// or NAME-FAILURE.
func (j *job) withConfig(ctx context.Context, name string, f func(context.Context, Config) error) error {
	c := &jobConfig{j: j}
	err := f(ctx, c)
	c.done.Store(true)
	if err != nil {
		j.s.log.Info(strings.ToLower(name)+" failed", "err", err)
		return j.send(name+"-FAILURE", oneLine(err.Error()))
	}
	return j.send(name + "-SUCCESS")
}

func (j *job) prepare(ctx context.Context) error {
	j.s.prepMu.Lock()
	defer j.s.prepMu.Unlock()
	if j.s.prepared.Load() {
		return j.send("PREPARE-SUCCESS")
	}
	return j.withConfig(ctx, "PREPARE", func(ctx context.Context, c Config) error {
		if err := j.s.b.Prepare(ctx, c); err != nil {
			return err
		}
		j.s.prepared.Store(true)
		return nil
	})
}

var errNotPrepared = errors.New("the remote was not prepared (no successful PREPARE)")

func (j *job) listConfigs() error {
	for _, c := range j.s.opts.Configs {
		if err := j.send("CONFIG", c.Name, oneLine(c.Description)); err != nil {
			return err
		}
	}
	return j.send("CONFIGEND")
}

// validKey reports whether k can be a git-annex key on a protocol line.
func validKey(k string) bool { return k != "" && !strings.ContainsAny(k, " \t") }

func (j *job) transfer(ctx context.Context, args string) error {
	f, ok := splitArgs(args, 3)
	if !ok || (f[0] != "STORE" && f[0] != "RETRIEVE") || !validKey(f[1]) || f[2] == "" {
		j.s.log.Warn("malformed TRANSFER", "job", j.id, "args", args)
		return j.send("UNSUPPORTED-REQUEST")
	}
	dir, key, file := f[0], f[1], f[2]
	if !filepath.IsAbs(file) {
		file = filepath.Join(j.s.workDir, file)
	}
	var err error
	if !j.s.prepared.Load() {
		err = errNotPrepared
	} else {
		p := newProgress(func(n int64) {
			// A failed write ends the conversation; the reply will fail too.
			_ = j.send("PROGRESS", strconv.FormatInt(n, 10))
		}, j.s.opts.ProgressInterval)
		op := j.s.b.Store
		if dir == "RETRIEVE" {
			op = j.s.b.Retrieve
		}
		err = op(withState(ctx, j), key, file, p.report)
		p.close()
	}
	if err != nil {
		j.s.log.Info("transfer failed", "dir", dir, "key", key, "err", err)
		return j.send("TRANSFER-FAILURE", dir, key, oneLine(err.Error()))
	}
	return j.send("TRANSFER-SUCCESS", dir, key)
}

// checkPresent answers SUCCESS or FAILURE only on a definite answer of the
// Backend; anything else, errors included, is UNKNOWN.
func (j *job) checkPresent(ctx context.Context, key string) error {
	if !validKey(key) {
		return j.send("UNSUPPORTED-REQUEST")
	}
	p := Unknown(errNotPrepared.Error())
	if j.s.prepared.Load() {
		var err error
		p, err = j.s.b.CheckPresent(withState(ctx, j), key)
		if err != nil {
			p = Unknown(err.Error())
		}
	}
	switch p.state {
	case statePresent:
		return j.send("CHECKPRESENT-SUCCESS", key)
	case stateAbsent:
		return j.send("CHECKPRESENT-FAILURE", key)
	}
	reason := oneLine(p.reason)
	if reason == "" {
		reason = "presence unknown"
	}
	return j.send("CHECKPRESENT-UNKNOWN", key, reason)
}

func (j *job) remove(ctx context.Context, key string) error {
	if !validKey(key) {
		return j.send("UNSUPPORTED-REQUEST")
	}
	err := errNotPrepared
	if j.s.prepared.Load() {
		err = j.s.b.Remove(withState(ctx, j), key)
	}
	if err != nil {
		j.s.log.Info("remove failed", "key", key, "err", err)
		return j.send("REMOVE-FAILURE", key, oneLine(err.Error()))
	}
	return j.send("REMOVE-SUCCESS", key)
}

func (j *job) whereis(ctx context.Context, key string) error {
	if !validKey(key) {
		return j.send("UNSUPPORTED-REQUEST")
	}
	where, err := "", errNotPrepared
	if j.s.prepared.Load() {
		where, err = j.s.b.Whereis(withState(ctx, j), key)
	}
	if err != nil {
		j.s.log.Info("whereis failed", "key", key, "err", err)
	}
	if err != nil || where == "" {
		return j.send("WHEREIS-FAILURE")
	}
	return j.send("WHEREIS-SUCCESS", oneLine(where))
}

// info answers GETINFO. GETINFO has no failure reply: an error is shown as a
// field named "error".
func (j *job) info(ctx context.Context) error {
	var fields []InfoField
	err := errNotPrepared
	if j.s.prepared.Load() {
		fields, err = j.s.b.Info(ctx)
	}
	if err != nil {
		fields = append(fields, InfoField{Name: "error", Value: err.Error()})
	}
	for _, f := range fields {
		if err := j.send("INFOFIELD", oneLine(f.Name)); err != nil {
			return err
		}
		if err := j.send("INFOVALUE", oneLine(f.Value)); err != nil {
			return err
		}
	}
	return j.send("INFOEND")
}

// jobConfig is the Config of one InitRemote or Prepare call.
type jobConfig struct {
	j    *job
	done atomic.Bool
}

func (c *jobConfig) check(what string) error {
	if c.done.Load() {
		return fmt.Errorf("%s: %w", what, ErrConfigExpired)
	}
	return nil
}

func (c *jobConfig) Get(ctx context.Context, name string) (string, error) {
	if err := c.check("GETCONFIG " + name); err != nil {
		return "", err
	}
	v, err := c.j.question(ctx, "GETCONFIG", name)
	if err != nil {
		return "", fmt.Errorf("asking git-annex for setting %s: %w", name, err)
	}
	return v, nil
}

func (c *jobConfig) Set(ctx context.Context, name, value string) error {
	if err := c.check("SETCONFIG " + name); err != nil {
		return err
	}
	if strings.ContainsAny(name, " \r\n") || strings.ContainsAny(value, "\r\n") {
		return fmt.Errorf("setting %.40q: %w", name, ErrBadLine)
	}
	return c.j.send("SETCONFIG", name, value)
}

func (c *jobConfig) GitRemoteName(ctx context.Context) (string, error) {
	if err := c.check("GETGITREMOTENAME"); err != nil {
		return "", err
	}
	if _, ok := c.j.s.offered.Load("GETGITREMOTENAME"); !ok {
		return "", fmt.Errorf("GETGITREMOTENAME: %w", ErrUnsupported)
	}
	v, err := c.j.question(ctx, "GETGITREMOTENAME")
	if err != nil {
		return "", fmt.Errorf("asking git-annex for the remote name: %w", err)
	}
	return v, nil
}

func (c *jobConfig) UUID(ctx context.Context) (string, error) {
	if err := c.check("GETUUID"); err != nil {
		return "", err
	}
	v, err := c.j.question(ctx, "GETUUID")
	if err != nil {
		return "", fmt.Errorf("asking git-annex for the remote's UUID: %w", err)
	}
	return v, nil
}

func (c *jobConfig) Info(ctx context.Context, msg string) error {
	if err := c.check("INFO"); err != nil {
		return err
	}
	if _, ok := c.j.s.offered.Load("INFO"); ok {
		return c.j.send("INFO", oneLine(msg))
	}
	return c.j.send("DEBUG", oneLine(msg))
}
