//go:build !faultinject

package exchange

import "testing"

// In production builds the fault switch cannot be turned on from outside.
func TestFaultOffInProductionBuilds(t *testing.T) {
	t.Setenv("ANNEX_SWARM_FAULT", "corrupt")
	n := newNodes(t, 1, nodeConfig{})
	if n[0].x.corrupt.Load() || faultCorruptFromEnv() {
		t.Fatal("ANNEX_SWARM_FAULT turned fault injection on in a production build")
	}
}
