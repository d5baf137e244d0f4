// Package netns builds small networks out of Linux network namespaces for
// tests: namespaces, veth pairs, bridges, NAT routers (iptables
// masquerade), rate limits (tc tbf) and random loss (nftables). Every Lab
// removes what it made when its test ends; a test without the rights or
// the tools is skipped with the reason.
//
// Traffic stays inside the namespaces a Lab creates: none of them is
// connected to the machine's own network.
package netns

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// cmdTimeout bounds one ip/tc/nft/iptables command.
const cmdTimeout = 20 * time.Second

// Lab is a set of namespaces made for one test. Names given to its methods
// are short local names; the namespaces carry a per-Lab prefix, so that
// tests running at once never share one.
type Lab struct {
	t      testing.TB
	prefix string
	made   []string
}

// New returns an empty Lab, or skips the test with the reason when this
// process cannot build namespaces (not root, a tool missing).
func New(t testing.TB) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("netns: needs root to create network namespaces (run the test as root)")
	}
	for _, tool := range []string{"ip", "iptables", "tc", "nft", "sysctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("netns: %s not found on PATH", tool)
		}
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	l := &Lab{t: t, prefix: "asw" + hex.EncodeToString(b[:]) + "-"}
	probe := l.prefix + "probe"
	if out, err := run("ip", "netns", "add", probe); err != nil {
		t.Skipf("netns: cannot create a network namespace: %v: %s", err, out)
	}
	_, _ = run("ip", "netns", "del", probe)
	t.Cleanup(l.Close)
	return l
}

// Name is the real name of the namespace called name in this Lab.
func (l *Lab) Name(name string) string { return l.prefix + name }

// NS creates namespace name with its loopback up.
func (l *Lab) NS(name string) string {
	l.t.Helper()
	full := l.Name(name)
	l.must("ip", "netns", "add", full)
	l.made = append(l.made, full)
	l.In(name, "ip", "link", "set", "lo", "up")
	return full
}

// In runs a command inside namespace name and fails the test when it fails.
func (l *Lab) In(name string, args ...string) string {
	l.t.Helper()
	return l.must(append([]string{"ip", "netns", "exec", l.Name(name)}, args...)...)
}

// Link connects namespaces a and b with a veth pair: interface ifA in a
// with address addrA (CIDR, "" for none), ifB in b with addrB. Both are up.
func (l *Lab) Link(a, ifA, addrA, b, ifB, addrB string) {
	l.t.Helper()
	tmp := "v" + l.prefix[3:9] + fmt.Sprint(len(l.made)) // unique while in the root namespace
	l.made = append(l.made, "")                          // keeps tmp names unique
	l.must("ip", "link", "add", tmp+"a", "netns", l.Name(a), "type", "veth", "peer", "name", tmp+"b", "netns", l.Name(b))
	l.In(a, "ip", "link", "set", tmp+"a", "name", ifA)
	l.In(b, "ip", "link", "set", tmp+"b", "name", ifB)
	for _, e := range []struct{ ns, ifc, addr string }{{a, ifA, addrA}, {b, ifB, addrB}} {
		if e.addr != "" {
			l.In(e.ns, "ip", "addr", "add", e.addr, "dev", e.ifc)
		}
		l.In(e.ns, "ip", "link", "set", e.ifc, "up")
	}
}

// Bridge creates bridge br in namespace name, with address addr (CIDR, ""
// for none), up.
func (l *Lab) Bridge(name, br, addr string) {
	l.t.Helper()
	l.In(name, "ip", "link", "add", br, "type", "bridge")
	if addr != "" {
		l.In(name, "ip", "addr", "add", addr, "dev", br)
	}
	l.In(name, "ip", "link", "set", br, "up")
}

// Plug connects namespace host to bridge br in namespace sw: interface ifc
// with address addr in host, its peer enslaved to br.
func (l *Lab) Plug(host, ifc, addr, sw, br string) {
	l.t.Helper()
	port := "p" + fmt.Sprint(len(l.made)) + host
	if len(port) > 15 {
		port = port[:15]
	}
	l.Link(host, ifc, addr, sw, port, "")
	l.In(sw, "ip", "link", "set", port, "master", br)
}

// Route sets the default route of namespace name via gateway gw.
func (l *Lab) Route(name, gw string) {
	l.t.Helper()
	l.In(name, "ip", "route", "add", "default", "via", gw)
}

// NAT makes namespace name a home router: it forwards, masquerades what
// leaves through interface wan (source NAT to wan's address, the source
// port kept when free), and silently drops what comes in unsolicited
// through wan, as home routers do: replies to what went out get in,
// nothing else.
func (l *Lab) NAT(name, wan string) { l.t.Helper(); l.nat(name, wan) }

// SymmetricNAT is NAT with a random source port for every new flow
// (masquerade --random-fully): what one peer observes is no use to
// another, so hole punching through it fails.
func (l *Lab) SymmetricNAT(name, wan string) { l.t.Helper(); l.nat(name, wan, "--random-fully") }

func (l *Lab) nat(name, wan string, extra ...string) {
	l.t.Helper()
	l.In(name, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	l.In(name, append([]string{"iptables", "-t", "nat", "-A", "POSTROUTING", "-o", wan, "-j", "MASQUERADE"}, extra...)...)
	for _, chain := range []string{"INPUT", "FORWARD"} {
		l.In(name, "iptables", "-A", chain, "-i", wan, "-m", "conntrack", "--ctstate", "NEW,INVALID", "-j", "DROP")
	}
}

// Rate limits what namespace name sends out of interface ifc to rate
// (tc syntax, e.g. "20mbit") with a token bucket filter.
func (l *Lab) Rate(name, ifc, rate string) {
	l.t.Helper()
	l.In(name, "tc", "qdisc", "replace", "dev", ifc, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "50ms")
}

// Loss drops percent % of the packets namespace name receives on
// interface ifc, at random (nftables numgen; this kernel has no netem).
// The drop is on the way in, as a lossy link's would be: a packet dropped
// on the way out of a host (postrouting) fails the sender's sendmsg with
// EPERM, which no real link does and which QUIC takes for a dead
// connection.
func (l *Lab) Loss(name, ifc string, percent int) {
	l.t.Helper()
	l.In(name, "nft", "add", "table", "inet", "lossy")
	l.In(name, "nft", "add", "chain", "inet", "lossy", "in", "{ type filter hook prerouting priority 0 ; }")
	l.In(name, "nft", "add", "rule", "inet", "lossy", "in", "iifname", ifc, "numgen", "random", "mod", "100", "<", fmt.Sprint(percent), "drop")
}

// Cut takes interface ifc of namespace name down (a partition); Heal
// brings it back up.
func (l *Lab) Cut(name, ifc string) { l.t.Helper(); l.In(name, "ip", "link", "set", ifc, "down") }

// Heal brings interface ifc of namespace name back up.
func (l *Lab) Heal(name, ifc string) { l.t.Helper(); l.In(name, "ip", "link", "set", ifc, "up") }

// Partition cuts the traffic bridged by namespace sw between the hosts of
// a and those of b (IPv4 addresses, no prefix), both ways: every packet is
// dropped (this kernel's bridge family has no reject), so open
// connections die by their keepalives. Hosts on the same side still talk.
// Unpartition heals it.
func (l *Lab) Partition(sw string, a, b []string) {
	l.t.Helper()
	set := func(ips []string) string { return "{ " + strings.Join(ips, ", ") + " }" }
	l.In(sw, "nft", "add", "table", "bridge", "partition")
	l.In(sw, "nft", "add", "chain", "bridge", "partition", "cut", "{ type filter hook forward priority 0 ; }")
	for _, d := range [][2][]string{{a, b}, {b, a}} {
		l.In(sw, "nft", "add", "rule", "bridge", "partition", "cut", "ip", "saddr", set(d[0]), "ip", "daddr", set(d[1]), "drop")
	}
}

// Unpartition removes what Partition added in namespace sw.
func (l *Lab) Unpartition(sw string) {
	l.t.Helper()
	l.In(sw, "nft", "delete", "table", "bridge", "partition")
}

// Close deletes every namespace the Lab made (their interfaces, bridges
// and rules go with them). It runs at the end of the test.
func (l *Lab) Close() {
	for i := len(l.made) - 1; i >= 0; i-- {
		if l.made[i] == "" {
			continue
		}
		if out, err := run("ip", "netns", "del", l.made[i]); err != nil {
			l.t.Logf("netns: deleting %s: %v: %s", l.made[i], err, out)
		}
	}
	l.made = nil
}

func (l *Lab) must(args ...string) string {
	l.t.Helper()
	out, err := run(args...)
	if err != nil {
		l.t.Fatalf("netns: %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

func run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}
