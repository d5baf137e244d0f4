package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// TestEveryCommandHelp runs every command of the tree with --help: each exits
// 0, has a one-line description and an example, and every flag is described.
func TestEveryCommandHelp(t *testing.T) {
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, s := range c.Commands() {
			walk(s, append(append([]string{}, path...), s.Name()))
		}
	}
	walk(newRoot(&bytes.Buffer{}), nil)
	if len(paths) < 25 {
		t.Fatalf("only %d commands in the tree", len(paths))
	}
	for _, p := range paths {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(append([]string{}, p...), "--help"), &out, &errb)
		name := strings.Join(append([]string{"annex-swarm"}, p...), " ")
		if code != 0 {
			t.Errorf("%s --help: exit %d, stderr %q", name, code, errb.String())
			continue
		}
		cmd, _, err := newRoot(&bytes.Buffer{}).Find(p)
		if err != nil {
			t.Fatalf("finding %s: %v", name, err)
		}
		if cmd.Short == "" || strings.Contains(cmd.Short, "\n") || !strings.Contains(out.String(), firstLine(cmd)) {
			t.Errorf("%s: no one-line description in its help:\n%s", name, out.String())
		}
		if !strings.Contains(out.String(), "Examples:\n  annex-swarm") {
			t.Errorf("%s: no example in its help:\n%s", name, out.String())
		}
		cmd.Flags().VisitAll(func(f *pflag.Flag) {
			if strings.TrimSpace(f.Usage) == "" {
				t.Errorf("%s: flag --%s has no description", name, f.Name)
			}
		})
		if cmd.Flags().Lookup("json") != nil && !strings.Contains(out.String(), "--json") {
			t.Errorf("%s: --json is not in its help", name)
		}
	}
}

// firstLine is what the help shows of a command's description: Long's first
// line, or Short when there is no Long.
func firstLine(c *cobra.Command) string {
	if c.Long != "" {
		l, _, _ := strings.Cut(c.Long, "\n")
		return l
	}
	return c.Short
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"get", "bafyx"},                  // no -o
		{"put"},                           // no FILE
		{"status", "--no-such-flag"},      // unknown flag
		{"rules", "set", "r", "copies=2"}, // no --key
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if n := strings.Count(errb.String(), "\n"); n != 1 {
			t.Errorf("%v: stderr is %d lines, want one: %q", args, n, errb.String())
		}
	}
}

func TestGetRefusesExistingFile(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(out, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"--home", filepath.Join(dir, "home"), "get", "bafyx", "-o", out}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "already exists") || !strings.Contains(stderr.String(), "--force") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatalf("the file was changed to %q", b)
	}
	// With --force the command goes on to the daemon (absent here).
	stderr.Reset()
	code = run(context.Background(), []string{"--home", filepath.Join(dir, "home"), "get", "bafyx", "-o", out, "--force"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "annex-swarmd is not running") {
		t.Fatalf("--force: exit %d, stderr %q", code, stderr.String())
	}
}

func TestFsckProblems(t *testing.T) {
	if p := fsckProblems(client.FsckResult{Checked: 3}); p != "" {
		t.Fatalf("a clean store has problems: %q", p)
	}
	if p := fsckProblems(client.FsckResult{Checked: 3, Incomplete: []string{"bafy"}}); p != "1 contents incomplete" {
		t.Fatalf("incomplete content: %q", p)
	}
}

func TestRemoveMessage(t *testing.T) {
	for _, c := range []struct {
		res  client.RemoveResult
		want string
	}{
		{client.RemoveResult{CID: "bafy", Surveyed: true}, "bafy is unknown to the swarm"},
		{client.RemoveResult{CID: "bafy", Surveyed: true, Unreachable: 2}, "no reachable member holds bafy; 2 members"},
		{client.RemoveResult{CID: "bafy", Surveyed: true, Holders: 3}, "removed bafy from 3 members"},
		{client.RemoveResult{CID: "bafy"}, "removed bafy from this host"},
	} {
		if got := removeMessage(c.res); !strings.HasPrefix(got, c.want) {
			t.Errorf("%+v: %q, want it to start with %q", c.res, got, c.want)
		}
	}
}

func TestStatusDashboard(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	st := client.Status{
		PeerID: "12D3KooWself", Version: "0.1.0-dev",
		Swarm:     &client.SwarmInfo{Name: "family", ID: "abc", Version: 7},
		Store:     client.StoreStatus{Used: 3 << 30, Limit: 10 << 30, Manifests: 4, Chunks: 90},
		BytesSent: 5 << 20, BytesReceived: 1 << 20, ConnectedPeers: 1,
		Members: []client.MemberStatus{
			{Name: "laptop", Role: "client", Self: true, PeerID: "12D3KooWself"},
			{Name: "nas", Role: "storage", Connected: true, PeerID: "12D3KooWnas"},
			{Name: "cloud", Role: "storage", LastSeen: t0.Add(-5 * time.Minute).Format(time.RFC3339), PeerID: "12D3KooWcloud"},
		},
		Replication: &client.ReplicationStatus{Contents: 4, AtTarget: 3, BelowTarget: 1, NoRoom: 1,
			Problem: "no storage member has room for 1 content(s)"},
	}
	var b bytes.Buffer
	printStatus(&b, st, t0)
	out := b.String()
	for _, want := range []string{
		"swarm     family, rules version 7",
		"annex-swarmd 0.1.0-dev",
		"3.0 GiB used of 10.0 GiB (30%)",
		"5.0 MiB sent, 1.0 MiB received",
		"4 contents: 3 at target, 1 below target",
		"PROBLEM   no storage member has room for 1 content(s)",
		"members   2 of 3 reachable",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dashboard lacks %q:\n%s", want, out)
		}
	}
	for _, row := range [][]string{{"laptop", "this host"}, {"nas", "connected", "now"}, {"cloud", "not connected", "5m ago"}} {
		found := false
		for _, line := range strings.Split(out, "\n") {
			ok := true
			for _, w := range row {
				ok = ok && strings.Contains(line, w)
			}
			found = found || ok
		}
		if !found {
			t.Errorf("no member line with %q:\n%s", row, out)
		}
	}
}

func TestManAndCompletion(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"man", "-o", dir}, &out, &errb); code != 0 {
		t.Fatalf("man: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "annex-swarm-get.1")); err != nil {
		t.Fatalf("no man page of get: %v", err)
	}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		out.Reset()
		if code := run(context.Background(), []string{"completion", sh}, &out, &errb); code != 0 || !strings.Contains(out.String(), "annex-swarm") {
			t.Fatalf("completion %s: exit %d, %d bytes", sh, code, out.Len())
		}
	}
}
