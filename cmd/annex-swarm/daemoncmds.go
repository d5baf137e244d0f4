package main

// The commands that talk to the local daemon: id, status, put, get, fsck.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

const jsonUsage = "print the answer as JSON (the form scripts rely on; see docs/CLI.md)"

func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func (e *env) idCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "id [--json]",
		Short: "Print this daemon's peer ID and listen addresses",
		Long: `id prints the libp2p peer ID of the local daemon and the addresses it listens
on: what an admin needs for 'annex-swarm member add'.
With --json: {"peer_id": ..., "addrs": [...]}.`,
		Example: "  annex-swarm id\n  annex-swarm --home /srv/swarm id --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			id, err := cl.ID(c.Context())
			if err != nil {
				return fail(err)
			}
			if asJSON {
				printJSON(e.out, id)
				return nil
			}
			fmt.Fprintln(e.out, id.PeerID)
			for _, a := range id.Addrs {
				fmt.Fprintf(e.out, "  %s\n", a)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, jsonUsage)
	return c
}

func (e *env) statusCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "status [--json]",
		Short: "Show the swarm at a glance: members, store, traffic, replication",
		Long: `status shows the adopted swarm and its version, every member with its state
and when it was last seen, the store's use, the traffic since start and the
replication summary with any problem the daemon sees.
With --json: at least peer_id, swarm {name, id, version}, connected_peers,
store {used, limit}, bytes_sent, bytes_received, members and replication.`,
		Example: "  annex-swarm status\n  annex-swarm status --json | jq .replication",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return fail(err)
			}
			if asJSON {
				printJSON(e.out, st)
				return nil
			}
			printStatus(e.out, st, now())
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, jsonUsage)
	return c
}

func (e *env) putCmd() *cobra.Command {
	var key string
	c := &cobra.Command{
		Use:   "put FILE... [--key KEY]",
		Short: "Store files in the swarm and print their CIDs",
		Long: `put hands FILE to the local daemon, which chunks it, stores it, announces it
and places copies per the swarm's rules. It returns once copies_min storage
members hold verified copies; the members bring it to the target by
themselves. The content's CID is the last line of stdout.

Given several files, put sends them in one request per 4096 files (the
daemon stores and seeds several at once) and prints "CID<TAB>FILE" for each
file stored; a file that fails is named on stderr, the others are stored all
the same, and the exit status is 1 when any failed.`,
		Example: "  annex-swarm put holiday.mov\n  cid=$(annex-swarm put holiday.mov | tail -n 1)\n  annex-swarm put photos/*.jpg",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if len(args) > 1 && key != "" {
				return fmt.Errorf("--key names the key of one file; give one FILE with it")
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			paths := make([]string, len(args))
			for i, a := range args {
				if paths[i], err = filepath.Abs(a); err != nil {
					return fail(err)
				}
			}
			bar := newBar(c.ErrOrStderr(), "put")
			if len(paths) > 1 {
				err := e.putMany(c, cl, args, paths, bar)
				bar.done()
				return err
			}
			res, err := cl.Put(c.Context(), client.PutRequest{Path: paths[0], Key: key}, bar.update)
			bar.done()
			if err != nil {
				return fail(err)
			}
			fmt.Fprintln(e.out, res.CID)
			return nil
		},
	}
	c.Flags().StringVar(&key, "key", "", "git-annex key of the content, recorded in its manifest")
	return c
}

// putMany puts several files with PutMany, in requests of at most
// client.MaxPutMany files: a line "CID<TAB>FILE" per file stored, a line on
// stderr per file that failed.
func (e *env) putMany(c *cobra.Command, cl *client.Client, names, paths []string, bar *bar) error {
	failed := 0
	for start := 0; start < len(paths); start += client.MaxPutMany {
		end := min(start+client.MaxPutMany, len(paths))
		req := client.PutManyRequest{Files: make([]client.PutRequest, 0, end-start)}
		for _, p := range paths[start:end] {
			req.Files = append(req.Files, client.PutRequest{Path: p})
		}
		res, err := cl.PutMany(c.Context(), req, bar.update)
		if err != nil {
			return fail(err)
		}
		for i, f := range res.Files {
			name := names[start+i]
			if f.Error != "" {
				failed++
				fmt.Fprintf(c.ErrOrStderr(), "%s: %s\n", name, f.Error)
				continue
			}
			fmt.Fprintf(e.out, "%s\t%s\n", f.CID, name)
		}
	}
	if failed > 0 {
		return fail(fmt.Errorf("%d of %d files could not be stored", failed, len(paths)))
	}
	return nil
}

func (e *env) getCmd() *cobra.Command {
	var out string
	var force bool
	c := &cobra.Command{
		Use:   "get CID -o FILE [--force]",
		Short: "Fetch a content from the swarm (from many members at once), verify it and write it",
		Long: `get fetches the content CID from the members that hold it, several at once,
verifies every chunk against its CID and writes FILE atomically. An existing
FILE is left alone unless --force is given.`,
		Example: "  annex-swarm get bafybei... -o holiday.mov\n  annex-swarm get bafybei... -o holiday.mov --force",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			path, err := filepath.Abs(out)
			if err != nil {
				return fail(err)
			}
			if !force {
				if _, err := os.Lstat(path); err == nil {
					return fail(fmt.Errorf("%s already exists; not overwriting it (use --force to replace it)", out))
				} else if !errors.Is(err, fs.ErrNotExist) {
					return fail(fmt.Errorf("checking %s: %w", out, err))
				}
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			bar := newBar(c.ErrOrStderr(), "get")
			_, err = cl.Get(c.Context(), client.GetRequest{CID: args[0], Path: path}, bar.update)
			bar.done()
			if err != nil {
				return fail(err)
			}
			return nil
		},
	}
	c.Flags().StringVarP(&out, "output", "o", "", "file to write the content to")
	c.Flags().BoolVar(&force, "force", false, "replace FILE when it exists")
	_ = c.MarkFlagRequired("output")
	return c
}

func (e *env) fsckCmd() *cobra.Command {
	var asJSON, repair bool
	c := &cobra.Command{
		Use:   "fsck [--repair] [--json]",
		Short: "Verify every chunk of the local store; exit 1 when anything is wrong",
		Long: `fsck reads every chunk of the local store and checks it against its CID.
Corrupt chunks are quarantined (and fetched again by replication). It exits 1
whenever it reports a problem: corrupt, orphaned or unreferenced chunks,
incomplete contents or wrong counters. --repair removes orphaned and
unreferenced chunks.
With --json: {"checked", "corrupt", "orphaned", "unreferenced", "incomplete", ...}.`,
		Example: "  annex-swarm fsck\n  annex-swarm fsck --repair --json",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.Fsck(c.Context(), client.FsckRequest{Repair: repair})
			if err != nil {
				return fail(err)
			}
			if asJSON {
				printJSON(e.out, res)
			} else {
				fmt.Fprintf(e.out, "%d chunks verified: %d corrupt (quarantined), %d orphaned, %d unreferenced, %d contents incomplete\n",
					res.Checked, len(res.Corrupt), len(res.Orphaned), len(res.Unreferenced), len(res.Incomplete))
				for _, c := range res.Corrupt {
					fmt.Fprintf(e.out, "corrupt   %s\n", c)
				}
				for _, c := range res.Orphaned {
					fmt.Fprintf(e.out, "orphaned  %s\n", c)
				}
				for _, c := range res.Incomplete {
					fmt.Fprintf(e.out, "incomplete %s\n", c)
				}
			}
			if p := fsckProblems(res); p != "" {
				return fail(errors.New("the store has problems: " + p))
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, jsonUsage)
	c.Flags().BoolVar(&repair, "repair", false, "remove orphaned and unreferenced chunks")
	return c
}

// fsckProblems names what fsck found wrong, "" when nothing.
func fsckProblems(r client.FsckResult) string {
	var p []string
	for _, x := range []struct {
		n    int
		what string
	}{{len(r.Corrupt), "corrupt"}, {len(r.Orphaned), "orphaned"}, {len(r.Unreferenced), "unreferenced"}, {len(r.Incomplete), "contents incomplete"}} {
		if x.n > 0 {
			p = append(p, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	if r.CountersWrong {
		p = append(p, "the store's counters disagreed with its index")
	}
	return strings.Join(p, ", ")
}
