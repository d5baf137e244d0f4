package exchange

import (
	"context"
	"fmt"

	"golang.org/x/time/rate"

	"github.com/annex-swarm/annex-swarm/proto"
)

// Bandwidth limits (docs/EXCHANGE.md "Bandwidth limits"): one token bucket
// per direction, shared by every exchange stream of the daemon, counting
// chunk payload bytes only (BlockResponse data; requests,
// manifests and framing are not counted).
//
//   - upload: a server waits for tokens for a chunk after reading it from
//     the store and before sending its BlockResponse;
//   - download: a fetcher waits for tokens for a chunk after its
//     BlockResponse has arrived and before it reads the next message of that
//     stream or stores the chunk. A blocked reader stops reading its stream,
//     so the transport's flow control holds the sender back; at most one
//     request window per source can arrive ahead of the rate.
//
// The burst is one maximal chunk (4 MiB), whatever the rate: WaitN for any
// chunk can succeed, and an idle daemon can save up at most one chunk's
// worth of tokens.

// minBurst is the smallest bucket size: one maximal chunk.
const minBurst = proto.MaxChunkSize

// bandwidth holds the two shared token buckets.
type bandwidth struct {
	up, down *rate.Limiter
}

func newBandwidth() *bandwidth {
	return &bandwidth{up: rate.NewLimiter(rate.Inf, minBurst), down: rate.NewLimiter(rate.Inf, minBurst)}
}

// set changes both limits in place (bytes per second, 0 = unlimited);
// waiters already blocked see the new rate.
func (b *bandwidth) set(upload, download int64) {
	setRate(b.up, upload)
	setRate(b.down, download)
}

func setRate(l *rate.Limiter, bps int64) {
	if bps <= 0 {
		l.SetLimit(rate.Inf)
		l.SetBurst(minBurst)
		return
	}
	l.SetBurst(minBurst)
	l.SetLimit(rate.Limit(bps))
}

// wait takes n tokens from l, waiting as long as the rate needs. n is at
// most one chunk, so it never exceeds the burst.
func wait(ctx context.Context, l *rate.Limiter, n int) error {
	if n <= 0 {
		return nil
	}
	if err := l.WaitN(ctx, n); err != nil {
		return fmt.Errorf("waiting for bandwidth for %d bytes: %w", n, err)
	}
	return nil
}
