package main

import (
	"github.com/spf13/cobra"

	"github.com/annex-swarm/annex-swarm/daemon/demo"
)

func demoCmd() *cobra.Command {
	var keep bool
	c := &cobra.Command{
		Use:   "demo",
		Short: "Run a self-contained local swarm on loopback that shows the whole story, then clean up",
		Long: `demo starts five daemons on loopback in a temporary folder, forms a swarm,
stores a file, watches the hosts copy it among themselves, kills a holder and
watches the repair, then does the same through git-annex (when installed).`,
		Example: "  annex-swarm demo\n  annex-swarm demo --keep",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := demo.Run(c.Context(), demo.Options{Out: c.OutOrStdout(), Keep: keep}); err != nil {
				return fail(err)
			}
			return nil
		},
	}
	c.Flags().BoolVar(&keep, "keep", false, "keep the demo folder (homes, logs, repository) afterwards")
	return c
}
