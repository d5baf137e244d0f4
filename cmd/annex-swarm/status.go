package main

// The human form of `status`: a compact dashboard.

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

// now is the clock of the dashboard's "ago" column.
var now = time.Now

// printStatus draws st as a dashboard; t is the time "ago" counts from.
func printStatus(w io.Writer, st client.Status, t time.Time) {
	if st.Swarm == nil {
		fmt.Fprintf(w, "swarm     none joined (annex-swarm join RULES)\n")
	} else {
		fmt.Fprintf(w, "swarm     %s, rules version %d  (id %s)\n", st.Swarm.Name, st.Swarm.Version, st.Swarm.ID)
	}
	fmt.Fprintf(w, "daemon    annex-swarmd %s, peer %s\n", st.Version, st.PeerID)

	limit := "unlimited"
	if st.Store.Limit > 0 {
		limit = fmt.Sprintf("%s (%d%%)", humanBytes(st.Store.Limit), st.Store.Used*100/st.Store.Limit)
	}
	fmt.Fprintf(w, "store     %s used of %s; %d contents, %d chunks, %d corrupt found\n",
		humanBytes(st.Store.Used), limit, st.Store.Manifests, st.Store.Chunks, st.Store.Corrupt)
	fmt.Fprintf(w, "traffic   %s sent, %s received since start; %d peers connected, %d strangers refused\n",
		humanBytes(st.BytesSent), humanBytes(st.BytesReceived), st.ConnectedPeers, st.RefusedConnections)
	if r := st.Replication; r != nil {
		fmt.Fprintf(w, "copies    %d contents: %d at target, %d below target, %d below copies_min, %d in repair, %d without room",
			r.Contents, r.AtTarget, r.BelowTarget, r.BelowMin, r.InRepair, r.NoRoom)
		if r.Removed > 0 {
			fmt.Fprintf(w, ", %d removed", r.Removed)
		}
		if r.LastRound != "" {
			fmt.Fprintf(w, "; last check %s", ago(r.LastRound, t))
		}
		fmt.Fprintln(w)
		if r.Problem != "" {
			fmt.Fprintf(w, "PROBLEM   %s\n", r.Problem)
		}
	}
	if a := st.Audit; a != nil && a.LastAudit != "" {
		fmt.Fprintf(w, "audits    %d sent: %d passed, %d failed, %d unknown; %d answered, %d lost here; last %s\n",
			a.Sent, a.Passed, a.Failed, a.Unknown, a.Served, a.LostHere, ago(a.LastAudit, t))
	}
	if len(st.Members) == 0 {
		return
	}
	up := 0
	for _, m := range st.Members {
		if m.Connected || m.Self {
			up++
		}
	}
	fmt.Fprintf(w, "members   %d of %d reachable\n", up, len(st.Members))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tROLE\tSTATE\tLAST SEEN\tPEER")
	for _, m := range st.Members {
		state, seen := "not connected", "never"
		switch {
		case m.Self:
			state, seen = "this host", "-"
		case m.Connected:
			state, seen = "connected", "now"
		case m.LastSeen != "":
			seen = ago(m.LastSeen, t)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", m.Name, m.Role, state, seen, m.PeerID)
	}
	tw.Flush()
}

// ago renders an RFC 3339 time as "3m ago"; text it cannot parse is shown
// as it is.
func ago(rfc3339 string, now time.Time) string {
	t, err := time.Parse(time.RFC3339, rfc3339)
	if err != nil {
		return rfc3339
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return t.Format(time.RFC3339)
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm ago", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}
