package main

// The commands that hand swarm definitions to the local daemon: join,
// rules push, leave.

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/annex-swarm/annex-swarm/rules"
)

func (e *env) joinCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "join RULES",
		Short: "Have the daemon adopt a verified swarm definition that lists this peer",
		Long: `join hands the signed definition RULES to the local daemon, which verifies it,
checks that it lists this host, adopts it and connects to the other members.`,
		Example: "  annex-swarm join swarm.rules",
		Args:    cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			signed, err := readRulesFile(args[0])
			if err != nil {
				return fail(err)
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.Join(c.Context(), signed)
			if err != nil {
				return fail(err)
			}
			fmt.Fprintf(e.out, "joined swarm %s (id %s) at version %d\n", res.Swarm.Name, res.Swarm.ID, res.Swarm.Version)
			return nil
		},
	}
}

func (e *env) rulesPushCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "push RULES",
		Short: "Hand a newer version of the definition to the daemon, which spreads it to the members",
		Example: `  annex-swarm rules set swarm.rules --key admin.key copies=3
  annex-swarm rules push swarm.rules`,
		Args: cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			signed, err := readRulesFile(args[0])
			if err != nil {
				return fail(err)
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.PushRules(c.Context(), signed)
			if err != nil {
				return fail(err)
			}
			if res.Adopted {
				fmt.Fprintf(e.out, "adopted version %d of swarm %s; spreading to the members\n", res.Swarm.Version, res.Swarm.Name)
			}
			return nil
		},
	}
}

func (e *env) leaveCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "leave",
		Short:   "Hand this member's copies to others, then stop serving the swarm",
		Example: "  annex-swarm leave",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			if err := cl.Leave(c.Context()); err != nil {
				return fail(err)
			}
			fmt.Fprintln(e.out, "left the swarm")
			return nil
		},
	}
}

func readRulesFile(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > rules.MaxDocumentSize {
		return nil, fmt.Errorf("%s is %d bytes, more than a swarm definition may be (%d)", path, st.Size(), rules.MaxDocumentSize)
	}
	return os.ReadFile(path)
}
