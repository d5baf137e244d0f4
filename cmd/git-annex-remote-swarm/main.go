// Command git-annex-remote-swarm is git-annex's external special remote for
// annex-swarm. It speaks git-annex's line protocol on stdin/stdout and the
// control API to the local annex-swarmd.
package main

import (
	"fmt"
	"os"

	"github.com/annex-swarm/annex-swarm/daemon"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--version" || os.Args[1] == "version") {
		fmt.Printf("git-annex-remote-swarm %s\n", daemon.Version)
		return
	}
	fmt.Fprintln(os.Stderr, "git-annex-remote-swarm: the special remote protocol is not built yet; this build only prints its version")
	os.Exit(1)
}
