//go:build faultinject

package exchange

import "os"

// FaultEnv is the environment variable read by test builds (the faultinject
// build tag) only. ANNEX_SWARM_FAULT=corrupt makes the serving side flip a
// byte of every chunk it sends, after reading it from the store.
const FaultEnv = "ANNEX_SWARM_FAULT"

// faultCorruptFromEnv reports whether ANNEX_SWARM_FAULT=corrupt is set. It
// exists only in builds with the faultinject tag (docs/EXCHANGE.md "Fault
// injection").
func faultCorruptFromEnv() bool { return os.Getenv(FaultEnv) == "corrupt" }
