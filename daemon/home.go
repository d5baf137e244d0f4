package daemon

import "github.com/annex-swarm/annex-swarm/internal/home"

// HomeEnv is the environment variable naming the home folder when --home is
// not given.
const HomeEnv = home.Env

// Home is a daemon's home folder and the well-known paths inside it.
type Home = home.Home

// ResolveHome picks the home folder: flag, else $ANNEX_SWARM_HOME, else
// ~/.annex-swarm (home.Resolve).
func ResolveHome(flag string) (Home, error) { return home.Resolve(flag) }
