// Package membership keeps a host in its closed swarm: the connection gater
// that admits only members, the libp2p host built around it, the adopted
// signed definition (join, restore, offer, leave), the rules exchange that
// spreads newer versions (docs/PROTOCOL.md "Rules exchange"), the swarm's
// private DHT, and when each member was last seen.
package membership
