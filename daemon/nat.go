package daemon

import "github.com/annex-swarm/annex-swarm/daemon/client"

// relayStatus reports the relay service this host runs for members, or nil.
func (d *Daemon) relayStatus() *client.RelayStatus {
	if !d.nat.RelayService() {
		return nil
	}
	s := d.nat.Stats()
	return &client.RelayStatus{
		Reservations:        s.Reservations.Load(),
		ReservationsRefused: s.ReservationsRefused.Load(),
		Circuits:            s.Circuits.Load(),
		CircuitsRefused:     s.CircuitsRefused.Load(),
		BytesRelayed:        s.BytesRelayed.Load(),
	}
}
