// Package swarm is the peer-to-peer logic: membership and the connection
// gater, DHT discovery, the multi-source fetcher, replication and bandwidth
// limiting.
package swarm
