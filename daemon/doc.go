// Package daemon wires annex-swarmd together: home folder, config, identity,
// the libp2p host, the chunk store, and the control API with its Go client.
package daemon
