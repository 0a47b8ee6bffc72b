package sink

import (
	"math/rand/v2"
	"time"
)

// Backoff is an exponential delay with jitter between attempts to write the
// same batch: attempt n waits about Min·2^(n-1), capped at Max, each delay
// drawn at random from [d/2, d] so that partitions failing together do not
// retry in lockstep.
type Backoff struct {
	// Min is the delay after the first failure. Default 100 ms.
	Min time.Duration
	// Max caps the delay. Default 10 s.
	Max time.Duration
}

// DefaultBackoff is 100 ms doubling up to 10 s.
var DefaultBackoff = Backoff{Min: 100 * time.Millisecond, Max: 10 * time.Second}

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoff.Max
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	return b
}

// Ceiling is the delay before jitter after the given failed attempt (1 is
// the first failure).
func (b Backoff) Ceiling(attempt int) time.Duration {
	b = b.withDefaults()
	d := b.Min
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Delay is the randomized delay after the given failed attempt: in
// [Ceiling/2, Ceiling].
func (b Backoff) Delay(attempt int) time.Duration {
	c := b.Ceiling(attempt)
	half := c / 2
	return half + rand.N(c-half+1)
}
