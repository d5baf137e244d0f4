package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/chunk/rclone/rclonetest"
	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/test/harness"
)

// TestCloudSwarmRepair is issue 13's demo: a swarm of two disk members and
// four cloud members (rclone over a webdav account on loopback) limited to
// 100 MiB each stores a 300 MiB file that none of them could hold, loses
// one cloud member and repairs. It moves some 700 MiB through rclone, so
// it runs only with ANNEX_SWARM_CLOUD_DEMO_MIB set (300 for the issue's
// figure; the limit is a third of the file, 100 MiB at 300: a set is a
// quarter of it, padding aside).
//
// The layout is erasure 4+1 with copies_min 2 (success and repair
// threshold 5): 5 sets of 75 MiB on 5 of the 6 storage members, so that
// one member is left to rebuild onto. 4+2 would take all 6 members and
// leave no member to repair onto (a lost set could only come back with its
// member); 4+1 survives one loss, and the repair restores that.
func TestCloudSwarmRepair(t *testing.T) {
	v := os.Getenv("ANNEX_SWARM_CLOUD_DEMO_MIB")
	if v == "" {
		t.Skip("set ANNEX_SWARM_CLOUD_DEMO_MIB (300 for issue 13's demo) to run it")
	}
	mib, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mib < 8 {
		t.Fatalf("ANNEX_SWARM_CLOUD_DEMO_MIB=%q: want a number of MiB ≥ 8", v)
	}
	size := mib << 20
	limit := size / 3
	w := rclonetest.Start(t)
	cfg := map[int]string{}
	for i := 2; i < 6; i++ {
		cfg[i] = fmt.Sprintf("[store]\nbackend = \"rclone\"\nremote = \"%s:cloud%d\"\nrclone_config = %q\n\n[limits]\nstorage = \"%dB\"\n",
			rclonetest.RemoteName, i, w.Config, limit)
	}
	const repairAfter = 20 * time.Second
	rs := formRepl(t, 6, true, harness.SwarmOptions{Copies: 2, CopiesMin: 2}, repairAfter.String(), cfg)
	pushErasure(t, rs, "4+1")
	laptop := rs.client
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	sum := writeRandomFile(t, src, size, 31)

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	res, err := laptop.Client().Put(ctx, client.PutRequest{Path: src}, nil)
	if err != nil {
		t.Fatalf("put: %v\n%s", err, laptop.LogTail(40))
	}
	var wr client.WhereResult
	harness.WaitFor(t, 20*time.Minute, "five shard sets placed", func() bool {
		wr = where(t, laptop, res.CID)
		return wr.Placed == 5 && wr.Survives != nil && *wr.Survives == 1
	})
	t.Logf("%d MiB put on 5 of 6 members (limit %d MiB each) in %s", mib, limit>>20, time.Since(start).Round(time.Second))
	for _, n := range rs.c.Nodes[:6] {
		if used := n.StatusJSON().Store.Used; used > limit {
			t.Fatalf("%s stores %d bytes, over its limit %d", n.Name, used, limit)
		}
	}

	// Lose a cloud member holding a set.
	var lost *harness.Node
	for _, h := range wr.Shards {
		n := memberByName(rs.c, h.Member)
		if cfg[indexOf(rs.c, n)] != "" {
			lost = n
			break
		}
	}
	if lost == nil {
		t.Fatalf("no cloud member among the holders %+v", wr.Shards)
	}
	lost.Kill()
	killed := time.Now()
	harness.WaitFor(t, repairAfter+20*time.Minute, "the lost set rebuilt: 5 holders, survives 1", func() bool {
		wr = where(t, laptop, res.CID)
		return wr.Placed == 5 && len(wr.Holders) == 5 && wr.Survives != nil && *wr.Survives == 1 && !holds(wr, lost.PeerID)
	})
	t.Logf("repaired %s after the kill (repair_after %s)", time.Since(killed).Round(time.Second), repairAfter)

	// A storage member reads it back from the sets, one of them rebuilt.
	var getter *harness.Node
	for _, n := range rs.c.Nodes[:6] {
		if n != lost && indexOf(rs.c, n) < 2 {
			getter = n
			break
		}
	}
	out := filepath.Join(dir, "out")
	getter.MustCLI("get", res.CID, "-o", out)
	if fileSHA256(t, out) != sum {
		t.Fatal("the file got back after the repair differs")
	}
}

func indexOf(c *harness.Cluster, n *harness.Node) int {
	for i, m := range c.Nodes {
		if m == n {
			return i
		}
	}
	return -1
}
