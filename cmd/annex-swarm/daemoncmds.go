package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// The commands that talk to the local daemon.

func (e *env) client() *client.Client { return client.New(e.home.Dir) }

// fail prints a one-line error and returns exit status 1.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "annex-swarm %s: %v\n", cmd, err)
	return 1
}

// usageError prints a usage problem and returns exit status 2.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "annex-swarm %s: %s\n", cmd, msg)
	return 2
}

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (e *env) runID(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("id", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return usageError(stderr, "id", err.Error())
	}
	id, err := e.client().ID(ctx)
	if err != nil {
		return fail(stderr, "id", err)
	}
	if *asJSON {
		printJSON(stdout, id)
		return 0
	}
	fmt.Fprintln(stdout, id.PeerID)
	for _, a := range id.Addrs {
		fmt.Fprintf(stdout, "  %s\n", a)
	}
	return 0
}

func (e *env) runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseArgs(fs, args); err != nil {
		return usageError(stderr, "status", err.Error())
	}
	st, err := e.client().Status(ctx)
	if err != nil {
		return fail(stderr, "status", err)
	}
	if *asJSON {
		printJSON(stdout, st)
		return 0
	}
	printStatus(stdout, st)
	return 0
}

func printStatus(w io.Writer, st client.Status) {
	fmt.Fprintf(w, "peer      %s (annex-swarmd %s)\n", st.PeerID, st.Version)
	if st.Swarm == nil {
		fmt.Fprintf(w, "swarm     none joined (annex-swarm join RULES)\n")
	} else {
		fmt.Fprintf(w, "swarm     %s  id %s  version %d\n", st.Swarm.Name, st.Swarm.ID, st.Swarm.Version)
	}
	limit := "unlimited"
	if st.Store.Limit > 0 {
		limit = humanBytes(st.Store.Limit)
	}
	fmt.Fprintf(w, "store     %s used of %s, %d chunks, %d contents, %d corrupt found\n",
		humanBytes(st.Store.Used), limit, st.Store.Chunks, st.Store.Manifests, st.Store.Corrupt)
	fmt.Fprintf(w, "traffic   %s sent, %s received, %d peers connected\n",
		humanBytes(st.BytesSent), humanBytes(st.BytesReceived), st.ConnectedPeers)
	for _, m := range st.Members {
		state := "not connected"
		switch {
		case m.Self:
			state = "this host"
		case m.Connected:
			state = "connected"
		}
		seen := ""
		if m.LastSeen != "" && !m.Connected && !m.Self {
			seen = ", last seen " + m.LastSeen
		}
		fmt.Fprintf(w, "member    %-12s %-8s %s%s  %s\n", m.Name, m.Role, state, seen, m.PeerID)
	}
}

func (e *env) runPut(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("put", flag.ContinueOnError)
	key := fs.String("key", "", "git-annex key of the content")
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 {
		return usageError(stderr, "put", "usage: annex-swarm put FILE [--key KEY]")
	}
	path, err := filepath.Abs(pos[0])
	if err != nil {
		return fail(stderr, "put", err)
	}
	bar := newBar(stderr, "put")
	res, err := e.client().Put(ctx, client.PutRequest{Path: path, Key: *key}, bar.update)
	bar.done()
	if err != nil {
		return fail(stderr, "put", err)
	}
	fmt.Fprintln(stdout, res.CID)
	return 0
}

func (e *env) runGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	out := fs.String("o", "", "file to write")
	pos, err := parseArgs(fs, args)
	if err != nil || len(pos) != 1 || *out == "" {
		return usageError(stderr, "get", "usage: annex-swarm get CID -o FILE")
	}
	path, err := filepath.Abs(*out)
	if err != nil {
		return fail(stderr, "get", err)
	}
	bar := newBar(stderr, "get")
	_, err = e.client().Get(ctx, client.GetRequest{CID: pos[0], Path: path}, bar.update)
	bar.done()
	if err != nil {
		return fail(stderr, "get", err)
	}
	return 0
}

func (e *env) runFsck(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fsck", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	repair := fs.Bool("repair", false, "remove orphaned and unreferenced chunks")
	if _, err := parseArgs(fs, args); err != nil {
		return usageError(stderr, "fsck", err.Error())
	}
	res, err := e.client().Fsck(ctx, client.FsckRequest{Repair: *repair})
	if err != nil {
		return fail(stderr, "fsck", err)
	}
	if *asJSON {
		printJSON(stdout, res)
	} else {
		fmt.Fprintf(stdout, "%d chunks verified: %d corrupt (quarantined), %d orphaned, %d unreferenced, %d contents incomplete\n",
			res.Checked, len(res.Corrupt), len(res.Orphaned), len(res.Unreferenced), len(res.Incomplete))
		for _, c := range res.Corrupt {
			fmt.Fprintf(stdout, "corrupt   %s\n", c)
		}
		for _, c := range res.Orphaned {
			fmt.Fprintf(stdout, "orphaned  %s\n", c)
		}
		for _, c := range res.Incomplete {
			fmt.Fprintf(stdout, "incomplete %s\n", c)
		}
	}
	if !res.OK() {
		return 1
	}
	return 0
}

// bar draws a progress bar on stderr when it is a terminal, and nothing
// otherwise.
type bar struct {
	pb *progressbar.ProgressBar
	w  io.Writer
	op string
}

func newBar(w io.Writer, op string) *bar { return &bar{w: w, op: op} }

func (b *bar) update(p client.Progress) {
	if !isTerminal(b.w) {
		return
	}
	if b.pb == nil {
		total := p.Total
		if total == 0 {
			total = -1
		}
		b.pb = progressbar.NewOptions64(total, progressbar.OptionSetWriter(b.w), progressbar.OptionShowBytes(true),
			progressbar.OptionSetDescription(b.op), progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
	}
	_ = b.pb.Set64(p.Bytes)
}

func (b *bar) done() {
	if b.pb != nil {
		_ = b.pb.Finish()
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
