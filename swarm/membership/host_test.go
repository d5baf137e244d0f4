package membership

import (
	"testing"

	ma "github.com/multiformats/go-multiaddr"
)

func TestTCPFirst(t *testing.T) {
	addrs := []ma.Multiaddr{
		ma.StringCast("/ip4/127.0.0.1/udp/4101/quic-v1"),
		ma.StringCast("/ip4/127.0.0.1/tcp/4101"),
		ma.StringCast("/ip6/::1/tcp/4101"),
	}
	got := tcpFirst(addrs)
	if len(got) != len(addrs) {
		t.Fatalf("ranked %d of %d addresses", len(got), len(addrs))
	}
	for _, d := range got {
		_, tcpErr := d.Addr.ValueForProtocol(ma.P_TCP)
		if want := quicDelay; tcpErr == nil && d.Delay != 0 || tcpErr != nil && d.Delay != want {
			t.Errorf("%s: delay %v", d.Addr, d.Delay)
		}
	}
}
