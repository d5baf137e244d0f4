package annexremote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The conversation, as specified in docs/ANNEX-REMOTE.md sections
// "Conversation" and "Async jobs".

// Defaults of Options.
const (
	// DefaultCost is the GETCOST answer when Options.Cost is 0: git-annex's
	// cost for an expensive remote.
	DefaultCost = 200
	// DefaultMaxJobs bounds the number of async jobs when Options.MaxJobs is 0.
	DefaultMaxJobs = 1024
)

// jobInbox is how many lines may wait for one job. git-annex sends a job a
// new line only after the job answered the previous one, so one suffices;
// more is slack.
const jobInbox = 4

// Options tune Serve. The zero value is usable.
type Options struct {
	// Configs are announced by LISTCONFIGS.
	Configs []ConfigSetting
	// Cost is the GETCOST answer; 0 means DefaultCost.
	Cost int
	// Availability is the GETAVAILABILITY answer; "" means Global.
	Availability Availability
	// WorkDir is the directory relative file names of TRANSFER are resolved
	// against; "" means the process's working directory, which is
	// git-annex's own.
	WorkDir string
	// ProgressInterval is the shortest time between two PROGRESS lines of
	// one transfer; 0 means DefaultProgressInterval.
	ProgressInterval time.Duration
	// MaxJobs bounds the number of async jobs; 0 means DefaultMaxJobs.
	MaxJobs int
	// NoAsync leaves the ASYNC extension out of the EXTENSIONS answer.
	NoAsync bool
	// Logger receives the server's own log; nil discards it. Nothing but
	// protocol lines is ever written to the output stream.
	Logger *slog.Logger
}

// Serve speaks the external special remote protocol: it sends VERSION 1 on
// out, then answers the requests git-annex writes on in by calling b, until
// in ends (nil), ctx is done (its error), git-annex sends ERROR
// (ErrAnnexError), or the conversation breaks (ErrProtocol, ErrLineTooLong,
// an I/O error). Requests still running are cancelled and awaited before
// Serve returns. A goroutine blocked reading in may outlive Serve until in
// is closed.
func Serve(ctx context.Context, in io.Reader, out io.Writer, b Backend, opts Options) error {
	s, err := newServer(b, out, opts)
	if err != nil {
		return err
	}
	return s.run(ctx, NewLineReader(in, MaxLineBytes))
}

// server is the state of one conversation.
type server struct {
	b       Backend
	w       *LineWriter
	opts    Options
	log     *slog.Logger
	workDir string

	async   atomic.Bool // ASYNC negotiated: route "J n" lines to jobs
	offered sync.Map    // extension name → struct{}: what git-annex offered

	prepMu   sync.Mutex // serialises Prepare
	prepared atomic.Bool

	fail   context.CancelCauseFunc
	jobs   map[int]*job // only the run goroutine touches it
	nAsync int          // async jobs in jobs
	jobsWG sync.WaitGroup
}

func newServer(b Backend, out io.Writer, opts Options) (*server, error) {
	for _, c := range opts.Configs {
		if c.Name == "" || strings.ContainsAny(c.Name, " \t\r\n") {
			return nil, fmt.Errorf("config setting %q: name must be one word", c.Name)
		}
	}
	if opts.Cost == 0 {
		opts.Cost = DefaultCost
	}
	if opts.Availability == "" {
		opts.Availability = Global
	}
	if opts.ProgressInterval <= 0 {
		opts.ProgressInterval = DefaultProgressInterval
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = DefaultMaxJobs
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wd := opts.WorkDir
	if wd == "" {
		var err error
		if wd, err = os.Getwd(); err != nil {
			return nil, fmt.Errorf("finding the working directory: %w", err)
		}
	}
	return &server{b: b, w: NewLineWriter(out), opts: opts, log: log, workDir: wd, jobs: map[int]*job{}}, nil
}

type readResult struct {
	line string
	err  error
}

func (s *server) run(parent context.Context, lr *LineReader) error {
	ctx, cancel := context.WithCancelCause(parent)
	s.fail = cancel
	defer cancel(nil)

	if err := s.w.WriteLine("VERSION 1"); err != nil {
		return err
	}
	err := s.loop(ctx, lr)
	if err != nil {
		// Stop the jobs: git-annex will not read their answers.
		cancel(err)
	}
	// At the end of input, jobs answer what they already hold and finish
	// what they are doing; git-annex closes its end only when it expects
	// nothing more.
	for _, j := range s.jobs {
		close(j.inbox)
	}
	s.jobsWG.Wait()
	if err == nil {
		err = context.Cause(ctx) // a job failed while draining
	}
	return err
}

// loop reads and dispatches lines until the input ends (nil) or the
// conversation must stop.
func (s *server) loop(ctx context.Context, lr *LineReader) error {
	lines := make(chan readResult)
	go func() {
		for {
			l, err := lr.ReadLine()
			select {
			case lines <- readResult{l, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case r := <-lines:
			if errors.Is(r.err, io.EOF) {
				s.log.Debug("git-annex closed the conversation")
				return nil
			}
			if r.err != nil {
				_ = s.w.WriteLine("ERROR " + oneLine(r.err.Error()))
				return r.err
			}
			if err := s.dispatch(ctx, r.line); err != nil {
				if !errors.Is(err, ErrAnnexError) {
					_ = s.w.WriteLine("ERROR " + oneLine(err.Error()))
				}
				return err
			}
		}
	}
}

// dispatch routes one line to the job it belongs to, creating the job on
// its first line.
func (s *server) dispatch(ctx context.Context, line string) error {
	id, msg := 0, line
	if s.async.Load() {
		if req, err := ParseRequest(line); err == nil && req.Job != 0 {
			id, msg = req.Job, Request{Name: req.Name, Args: req.Args}.String()
		}
	}
	if id == 0 {
		if rest, ok := strings.CutPrefix(line, "ERROR"); ok && (rest == "" || rest[0] == ' ') {
			return fmt.Errorf("%w:%s", ErrAnnexError, rest)
		}
		// EXTENSIONS is answered here, not by a job, so that the lines
		// after it are routed by the negotiated mode even when they are
		// already waiting in the input.
		if args, ok := strings.CutPrefix(line, "EXTENSIONS"); ok && (args == "" || args[0] == ' ') {
			return s.extensions(args)
		}
	}
	j := s.jobs[id]
	if j == nil {
		if id != 0 {
			if s.nAsync >= s.opts.MaxJobs {
				return fmt.Errorf("job %d: more than %d jobs: %w", id, s.opts.MaxJobs, ErrProtocol)
			}
			s.nAsync++
		}
		j = &job{s: s, id: id, inbox: make(chan string, jobInbox)}
		s.jobs[id] = j
		s.jobsWG.Go(func() { j.loop(ctx) })
	}
	select {
	case j.inbox <- msg:
		return nil
	default:
		return fmt.Errorf("job %d: line %.40q while %d lines wait: %w", id, msg, jobInbox, ErrProtocol)
	}
}

// job is one sequential conversation: the un-prefixed one (id 0) or one
// async job "J id". Requests of a job are handled one after the other; the
// replies git-annex gives to the job's own questions (VALUE) arrive on the
// same inbox.
type job struct {
	s     *server
	id    int
	inbox chan string
	ask   sync.Mutex // one question to git-annex at a time
}

func (j *job) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-j.inbox:
			if !ok {
				return
			}
			if err := j.handle(ctx, msg); err != nil {
				j.s.fail(err)
				return
			}
		}
	}
}

// send writes one line of this job, with the "J n " prefix when async.
func (j *job) send(parts ...string) error {
	line := strings.Join(parts, " ")
	if j.id != 0 {
		line = fmt.Sprintf("J %d %s", j.id, line)
	}
	return j.s.w.WriteLine(line)
}

// question sends a request to git-annex and waits for its VALUE reply.
func (j *job) question(ctx context.Context, parts ...string) (string, error) {
	j.ask.Lock()
	defer j.ask.Unlock()
	if err := j.send(parts...); err != nil {
		return "", err
	}
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case msg, ok := <-j.inbox:
		if !ok {
			return "", fmt.Errorf("waiting for the answer to %s: %w", parts[0], io.ErrUnexpectedEOF)
		}
		if v, ok := strings.CutPrefix(msg, "VALUE"); ok && (v == "" || v[0] == ' ') {
			return strings.TrimPrefix(v, " "), nil
		}
		err := fmt.Errorf("job %d: %.40q in answer to %s: %w", j.id, msg, parts[0], ErrProtocol)
		if strings.HasPrefix(msg, "ERROR") {
			err = fmt.Errorf("job %d: in answer to %s: %w: %s", j.id, parts[0], ErrAnnexError, msg)
		}
		j.s.fail(err)
		return "", err
	}
}
