package annexremote

import (
	"sync"
	"time"
)

// Progress reporting, as specified in docs/ANNEX-REMOTE.md section "PROGRESS".

// DefaultProgressInterval is the shortest time between two PROGRESS lines of
// one transfer (at most 10 a second).
const DefaultProgressInterval = 100 * time.Millisecond

// progress rate-limits the PROGRESS lines of one transfer. The first report
// is sent at once; later ones within the interval are coalesced and the
// latest value is sent when the interval ends, so the last value reported
// always reaches git-annex (stall detection sees every advance, at most one
// interval late). close sends any pending value and stops everything, so no
// PROGRESS follows the transfer's reply.
type progress struct {
	mu       sync.Mutex
	send     func(int64)
	interval time.Duration
	lastSent int64
	sentAny  bool
	lastTime time.Time
	pending  int64
	hasPend  bool
	timer    *time.Timer
	closed   bool
}

func newProgress(send func(int64), interval time.Duration) *progress {
	return &progress{send: send, interval: interval}
}

// report is the ProgressFunc handed to the Backend.
func (p *progress) report(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || (p.sentAny && n == p.lastSent && !p.hasPend) {
		return
	}
	now := time.Now()
	if !p.sentAny || now.Sub(p.lastTime) >= p.interval {
		p.hasPend = false
		p.emit(n, now)
		return
	}
	p.pending, p.hasPend = n, true
	if p.timer == nil {
		p.timer = time.AfterFunc(p.interval-now.Sub(p.lastTime), p.flush)
	}
}

// flush runs when the interval after the last sent value ends.
func (p *progress) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.closed || !p.hasPend {
		return
	}
	p.hasPend = false
	p.emit(p.pending, time.Now())
}

// emit sends n; p.mu is held, which keeps lines of one transfer in order.
func (p *progress) emit(n int64, now time.Time) {
	p.lastSent, p.sentAny, p.lastTime = n, true, now
	p.send(n)
}

// close sends the pending value, if any, and stops reporting.
func (p *progress) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	if p.hasPend && p.pending != p.lastSent {
		p.emit(p.pending, time.Now())
	}
	p.hasPend = false
	p.closed = true
}
