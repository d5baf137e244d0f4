package exchange

import (
	"errors"
	"testing"
	"time"

	"github.com/annex-swarm/annex-swarm/swarm/swarmtest"
)

// A start does not announce again what was announced less than a
// reprovide interval ago; without a record, or with a bad one, it
// announces a minute after start.
func TestFirstAnnounceFollowsTheLastOne(t *testing.T) {
	h := swarmtest.Hosts(t, 1)[0].Host
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	const every = 12 * time.Hour
	for _, c := range []struct {
		name string
		last time.Time
		err  error
		want time.Duration
	}{
		{"never announced", time.Time{}, nil, firstReprovide},
		{"an hour ago", now.Add(-time.Hour), nil, 11 * time.Hour},
		{"long ago", now.Add(-3 * every), nil, firstReprovide},
		{"a second before the interval ends", now.Add(-every + time.Second), nil, firstReprovide},
		{"in the future (clock moved)", now.Add(time.Hour), nil, firstReprovide},
		{"unreadable record", time.Time{}, errors.New("damaged"), firstReprovide},
	} {
		x := New(Options{Host: h, ReprovideInterval: every, LastAnnounced: func() (time.Time, error) { return c.last, c.err }})
		if got := x.firstAnnounce(now); got != c.want {
			t.Errorf("%s: first announcement after %s, want %s", c.name, got, c.want)
		}
	}
}
