//go:build !faultinject

package exchange

// faultCorruptFromEnv reports whether this process serves corrupted chunks
// (docs/EXCHANGE.md "Fault injection"). In production builds it is the
// constant false: nothing (no variable, no setting) can turn it on. Builds
// with the faultinject tag read FaultEnv instead
// (fault_faultinject.go).
func faultCorruptFromEnv() bool { return false }
