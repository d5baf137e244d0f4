package harness

import (
	"path/filepath"
	"strconv"
	"testing"
)

// SwarmOptions shape the definition FormSwarm writes.
type SwarmOptions struct {
	Name      string // swarm name; "test" when empty
	Copies    int    // 0: the CLI's default
	CopiesMin int
	// Roles maps a node index to its role; storage when absent.
	Roles map[int]string
	// MemberArgs adds `member add` flags for a node index, e.g. --storage 1MiB.
	MemberArgs map[int][]string
	// NoAddrs lists node indexes entered without addresses: members that
	// only dial out, whom the others find through the DHT.
	NoAddrs map[int]bool
	// NoJoin lists node indexes that are members but do not join yet.
	NoJoin map[int]bool
}

// Swarm is a formed swarm: the admin key and the current rules file.
type Swarm struct {
	Dir   string
	Key   string // admin's armored secret key
	Rules string // current clear-signed definition
}

// FormSwarm authors a swarm definition with the CLI (key generate, swarm
// create, member add for every node with its real loopback addresses) and has
// every node join it.
func (c *Cluster) FormSwarm(t testing.TB, o SwarmOptions) *Swarm {
	t.Helper()
	if o.Name == "" {
		o.Name = "test"
	}
	dir := t.TempDir()
	s := &Swarm{Dir: dir, Key: filepath.Join(dir, "admin.key"), Rules: filepath.Join(dir, "swarm.rules")}
	c.MustRun(t, "key", "generate", "--name", "admin", "-o", s.Key)
	create := []string{"swarm", "create", "--name", o.Name, "--key", s.Key, "-o", s.Rules}
	if o.Copies > 0 {
		create = append(create, "--copies", strconv.Itoa(o.Copies))
	}
	if o.CopiesMin > 0 {
		create = append(create, "--copies-min", strconv.Itoa(o.CopiesMin))
	}
	c.MustRun(t, create...)
	for i, n := range c.Nodes {
		args := o.MemberArgs[i]
		if !o.NoAddrs[i] {
			for _, a := range n.Addrs {
				args = append(args, "--addr", a)
			}
		}
		c.AddMember(t, s, n, o.roleOf(i), args...)
	}
	for i, n := range c.Nodes {
		if !o.NoJoin[i] {
			n.MustCLI("join", s.Rules)
		}
	}
	return s
}

func (o SwarmOptions) roleOf(i int) string {
	if r, ok := o.Roles[i]; ok {
		return r
	}
	return "storage"
}

// AddMember adds n to the definition (version + 1); extra holds further
// `member add` flags, its --addr ones among them.
func (c *Cluster) AddMember(t testing.TB, s *Swarm, n *Node, role string, extra ...string) {
	t.Helper()
	args := []string{"member", "add", s.Rules, "--key", s.Key, "--peer", n.PeerID, "--name", n.Name, "--role", role}
	c.MustRun(t, append(args, extra...)...)
}

// MustRun runs the CLI without a home (offline authoring) and fails the test
// on a non-zero exit.
func (c *Cluster) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := RunCLI(c.bin, args...)
	if r.Code != 0 {
		t.Fatalf("annex-swarm %v: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r.Stdout
}
