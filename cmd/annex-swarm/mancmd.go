package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manCmd writes one man page per command of root.
func manCmd(root *cobra.Command) *cobra.Command {
	var dir string
	c := &cobra.Command{
		Use:     "man -o DIR",
		Short:   "Write the man pages of every command into a folder",
		Example: "  annex-swarm man -o /usr/local/share/man/man1",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fail(fmt.Errorf("creating %s: %w", dir, err))
			}
			hdr := &doc.GenManHeader{Title: "ANNEX-SWARM", Section: "1", Source: "annex-swarm", Manual: "annex-swarm manual"}
			if err := doc.GenManTree(root, hdr, dir); err != nil {
				return fail(fmt.Errorf("writing man pages to %s: %w", dir, err))
			}
			fmt.Fprintf(c.OutOrStdout(), "wrote the man pages to %s\n", dir)
			return nil
		},
	}
	c.Flags().StringVarP(&dir, "output", "o", "", "folder to write the pages to (created if missing)")
	_ = c.MarkFlagRequired("output")
	return c
}
