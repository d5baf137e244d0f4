// Command annex-swarm is the CLI of annex-swarm: it talks to the local
// annex-swarmd through its control API, and authors keys and swarm rules
// offline. The command-line contracts are in docs/CLI.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/annex-swarm/annex-swarm/daemon/client"
	"github.com/annex-swarm/annex-swarm/internal/home"
	"github.com/annex-swarm/annex-swarm/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// failure marks an error of the work itself (exit 1). Any other error that
// reaches run is a usage error (exit 2): an unknown command or flag, a
// missing argument.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// fail wraps err as a failure of the command (exit status 1).
func fail(err error) error { return failure{err} }

// run executes the command line args and returns the exit status: 0 on
// success, 1 when the command failed, 2 on a usage error; the reason is one
// line on stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	if cmd == nil {
		cmd = root
	}
	var f failure
	if errors.As(err, &f) {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), f.err)
		return 1
	}
	fmt.Fprintf(stderr, "%s: %v (see %s --help)\n", cmd.CommandPath(), err, cmd.CommandPath())
	return 2
}

// env is what the commands share: the --home flag and stdout.
type env struct {
	homeFlag string
	out      io.Writer
}

// home resolves the home folder: --home, else $ANNEX_SWARM_HOME, else
// ~/.annex-swarm.
func (e *env) home() (home.Home, error) { return home.Resolve(e.homeFlag) }

// client returns the control API client of the home's daemon.
func (e *env) client() (*client.Client, error) {
	h, err := e.home()
	if err != nil {
		return nil, fail(err)
	}
	return client.New(h.Dir), nil
}

// newRoot builds the whole command tree.
func newRoot(stdout io.Writer) *cobra.Command {
	e := &env{out: stdout}
	root := &cobra.Command{
		Use:   "annex-swarm",
		Short: "Control a local annex-swarmd and author swarm keys and rules",
		Long: `annex-swarm talks to the local annex-swarmd over its control socket
(HOME/control.sock) to store, fetch, locate and remove content in the swarm,
and authors OpenPGP keys and signed swarm definitions offline.

The home folder is --home DIR, else $ANNEX_SWARM_HOME, else ~/.annex-swarm.
Exit status: 0 on success, 1 when the command failed, 2 on a usage error;
the reason is one line on stderr. The full reference is docs/CLI.md.`,
		Example: `  annex-swarm --home ~/.annex-swarm status
  annex-swarm put holiday.mov
  annex-swarm get bafy... -o holiday.mov`,
		Version:       version.Version,
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout) // before InitDefaultCompletionCmd, which keeps it
	root.SetVersionTemplate("annex-swarm {{.Version}}\n")
	root.PersistentFlags().StringVar(&e.homeFlag, "home", "", "home folder of the daemon (default $ANNEX_SWARM_HOME, else ~/.annex-swarm)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })

	root.AddGroup(&cobra.Group{ID: "daemon", Title: "Commands that talk to the local daemon:"},
		&cobra.Group{ID: "author", Title: "Offline authoring of keys and rules (no daemon needed):"},
		&cobra.Group{ID: "other", Title: "Other commands:"})
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("daemon", e.idCmd(), e.statusCmd(), e.putCmd(), e.getCmd(), e.whereCmd(), e.rmCmd(),
		e.fsckCmd(), e.joinCmd(), e.leaveCmd())
	add("author", keyCmd(e), swarmCmd(e), memberCmd(e), adminCmd(e), e.rulesCmd())
	add("other", demoCmd(), versionCmd(), manCmd(root))
	root.SetHelpCommandGroupID("other")
	root.SetCompletionCommandGroupID("other")
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "help":
			c.Example = "  annex-swarm help put"
		case "completion":
			describeCompletion(c)
		}
	}
	return root
}

// describeCompletion gives cobra's completion commands examples.
func describeCompletion(c *cobra.Command) {
	c.Example = `  annex-swarm completion bash > /etc/bash_completion.d/annex-swarm
  annex-swarm completion zsh > "${fpath[1]}/_annex-swarm"
  annex-swarm completion fish > ~/.config/fish/completions/annex-swarm.fish`
	for _, s := range c.Commands() {
		s.Example = fmt.Sprintf("  annex-swarm completion %s", s.Name())
	}
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print the version of annex-swarm",
		Example: "  annex-swarm version",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintf(c.OutOrStdout(), "annex-swarm %s\n", version.Version)
			return nil
		},
	}
}
