package membership

import (
	"time"

	pbv2 "github.com/libp2p/go-libp2p/p2p/protocol/circuitv2/pb"
)

// relayTracer counts what the relay service does (relayv2.MetricsTracer).
type relayTracer struct{ s *RelayStats }

func (t *relayTracer) RelayStatus(bool)               {}
func (t *relayTracer) ConnectionOpened()              { t.s.Circuits.Add(1) }
func (t *relayTracer) ConnectionClosed(time.Duration) {}
func (t *relayTracer) ConnectionRequestHandled(st pbv2.Status) {
	if st != pbv2.Status_OK {
		t.s.CircuitsRefused.Add(1)
	}
}
func (t *relayTracer) ReservationAllowed(bool) { t.s.Reservations.Add(1) }
func (t *relayTracer) ReservationClosed(int)   {}
func (t *relayTracer) ReservationRequestHandled(st pbv2.Status) {
	if st != pbv2.Status_OK {
		t.s.ReservationsRefused.Add(1)
	}
}
func (t *relayTracer) BytesTransferred(n int) { t.s.BytesRelayed.Add(int64(n)) }
