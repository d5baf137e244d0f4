// Package version holds the one version string of all annex-swarm programs.
package version

// Version is the program version reported by `version` and the status.
const Version = "0.1.0-dev"
