// Package demo runs `annex-swarm demo`: a self-contained swarm of local
// daemons on loopback, in a temporary folder, that shows the whole story end
// to end and then cleans up.
package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/localswarm"
	"github.com/annex-swarm/annex-swarm/rules"
)

// Options shape a demo run.
type Options struct {
	Out      io.Writer
	Nodes    int   // swarm size; 5 when zero
	FileSize int64 // size of the demo file; 32 MiB when zero
	Keep     bool  // keep the temporary folder (its path is printed)
}

// run is one demo in progress.
type run struct {
	o     Options
	dir   string
	nodes []*localswarm.Node
	names []string
}

// Run runs the demo until done or ctx ends, and always cleans up.
func Run(ctx context.Context, o Options) (err error) {
	if o.Nodes == 0 {
		o.Nodes = 5
	}
	if o.FileSize == 0 {
		o.FileSize = 32 << 20
	}
	daemonBin, err := localswarm.FindBinary("annex-swarmd")
	if err != nil {
		return err
	}
	remoteDir, err := checkGitAnnex()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "annex-swarm-demo-")
	if err != nil {
		return fmt.Errorf("creating the demo folder: %w", err)
	}
	r := &run{o: o, dir: dir}
	defer func() {
		if cerr := r.cleanup(); err == nil {
			err = cerr
		}
	}()
	r.say("annex-swarm demo: %d daemons on loopback in %s", o.Nodes, dir)
	if err := r.start(ctx, daemonBin); err != nil {
		return err
	}
	if err := r.formSwarm(ctx); err != nil {
		return err
	}
	return r.annexStory(ctx, remoteDir)
}

func (r *run) say(format string, args ...any) {
	fmt.Fprintf(r.o.Out, format+"\n", args...)
}

func (r *run) step(format string, args ...any) {
	fmt.Fprintf(r.o.Out, "\n== "+format+"\n", args...)
}

// start runs the daemons: the first is "laptop" (a client member), the others
// are storage hosts.
func (r *run) start(ctx context.Context, daemonBin string) error {
	r.step("starting %d annex-swarmd daemons", r.o.Nodes)
	for i := range r.o.Nodes {
		name := fmt.Sprintf("host%d", i)
		if i == 0 {
			name = "laptop"
		}
		n, err := localswarm.NewNode(name, filepath.Join(r.dir, name), daemonBin, "",
			"--sync-interval", "2s", "--repair-interval", "2s")
		if err != nil {
			return err
		}
		if err := n.Start(ctx); err != nil {
			return err
		}
		r.nodes = append(r.nodes, n)
		r.names = append(r.names, name)
		r.say("%-7s %s  %v", name, n.PeerID, n.Addrs)
	}
	return nil
}

// formSwarm authors and signs the swarm definition and has every daemon join.
func (r *run) formSwarm(ctx context.Context) error {
	r.step("creating an admin key and a signed swarm definition")
	keyText, err := rules.GenerateKey("demo admin", nil)
	if err != nil {
		return err
	}
	signer, err := rules.ReadSigner(bytes.NewReader(keyText), nil)
	if err != nil {
		return err
	}
	genesis, err := rules.Create("demo", signer, rules.Replication{Copies: 3, CopiesMin: 2, RepairAfter: 5 * time.Second}, time.Now())
	if err != nil {
		return err
	}
	def := genesis.Next()
	for i, n := range r.nodes {
		m, err := memberOf(n, r.names[i], i == 0)
		if err != nil {
			return err
		}
		if err := def.AddMember(m); err != nil {
			return err
		}
	}
	signed, err := signer.Sign(def, genesis)
	if err != nil {
		return err
	}
	path := filepath.Join(r.dir, "swarm.rules")
	if err := os.WriteFile(path, signed, 0o644); err != nil {
		return err
	}
	r.say("%s", def.Summary())
	r.step("every daemon joins (verifies the signature, connects to the others)")
	for _, n := range r.nodes {
		res, err := n.Client().Join(ctx, signed)
		if err != nil {
			return fmt.Errorf("%s join: %w", n.Name, err)
		}
		r.say("%-7s joined %s version %d", n.Name, res.Swarm.Name, res.Swarm.Version)
	}
	return r.waitConnected(ctx)
}

func memberOf(n *localswarm.Node, name string, client bool) (rules.Member, error) {
	id, err := rules.DecodePeerID(n.PeerID)
	if err != nil {
		return rules.Member{}, err
	}
	m := rules.Member{Name: name, Peer: id, Role: rules.RoleStorage}
	if client {
		m.Role = rules.RoleClient
	}
	for _, a := range n.Addrs {
		addr, err := rules.ParseAddr(a, id)
		if err != nil {
			return rules.Member{}, err
		}
		m.Addrs = append(m.Addrs, addr)
	}
	return m, nil
}

// waitConnected waits (bounded) until every daemon sees every other one.
func (r *run) waitConnected(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		all := true
		for _, n := range r.nodes {
			st, err := n.Client().Status(ctx)
			if err != nil {
				return err
			}
			if st.ConnectedPeers < len(r.nodes)-1 {
				all = false
			}
		}
		if all {
			r.say("all %d members connected to each other", len(r.nodes))
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("members did not connect to each other within 30s")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cleanup stops every daemon and removes the folder unless asked to keep it.
func (r *run) cleanup() error {
	var errs []error
	for _, n := range r.nodes {
		if err := n.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if r.o.Keep {
		r.say("\nkept %s", r.dir)
	} else if err := os.RemoveAll(r.dir); err != nil {
		errs = append(errs, err)
	}
	r.step("done; every daemon stopped and the demo folder removed")
	return errors.Join(errs...)
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
