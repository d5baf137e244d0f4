package main

// The replication commands: where and rm.

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/annex-swarm/annex-swarm/daemon/client"
)

func (e *env) whereCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "where CID [--json]",
		Short: "List the members that hold a verified full copy of a content",
		Long: `where asks the storage members which of them hold a verified full copy of CID.
With --json: {"cid": ..., "holders": [{"peer_id": ..., "name": ...}], "copies": N,
"target": M, "copies_min": K, "unreachable": U}, and "resolved": the root the
answer is for when CID was re-coded since a change of erasure scheme.`,
		Example: "  annex-swarm where bafybei...\n  annex-swarm where bafybei... --json | jq .copies",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.Where(c.Context(), args[0])
			if err != nil {
				return fail(err)
			}
			if asJSON {
				printJSON(e.out, res)
				return nil
			}
			if res.Resolved != "" {
				fmt.Fprintf(e.out, "%s: re-coded as %s\n", res.CID, res.Resolved)
			}
			fmt.Fprintf(e.out, "%s: %d of %d copies\n", res.CID, res.Copies, res.Target)
			for _, h := range res.Holders {
				fmt.Fprintf(e.out, "  %-12s %s\n", h.Name, h.PeerID)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&asJSON, "json", false, jsonUsage)
	return c
}

func (e *env) rmCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rm CID",
		Short: "Remove a content from every member of the swarm",
		Long: `rm removes CID from every member. Members that are offline remove it when
they come back. A CID that no member holds is reported as such (exit 0).`,
		Example: "  annex-swarm rm bafybei...",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.Remove(c.Context(), args[0])
			if err != nil {
				return fail(err)
			}
			fmt.Fprintln(e.out, removeMessage(res))
			return nil
		},
	}
}

// removeMessage says what rm did, in words that are true of res.
func removeMessage(res client.RemoveResult) string {
	switch {
	case !res.Surveyed:
		return fmt.Sprintf("removed %s from this host (it is in no swarm)", res.CID)
	case res.Holders == 0 && res.Unreachable == 0:
		return fmt.Sprintf("%s is unknown to the swarm: no member holds a copy (its removal is recorded, so a copy that turns up later is dropped)", res.CID)
	case res.Holders == 0:
		return fmt.Sprintf("no reachable member holds %s; %d members could not be asked and remove it when they come back", res.CID, res.Unreachable)
	}
	return fmt.Sprintf("removed %s from %d members (members that are offline remove it when they come back)", res.CID, res.Holders)
}
