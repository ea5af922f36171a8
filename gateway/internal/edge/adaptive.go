package edge

import (
	"sync"
	"sync/atomic"
	"time"
)

// adaptive is a concurrency limit that follows the admitted requests'
// latency (additive increase, multiplicative decrease): a fixed bound is
// right for one machine and one mix of requests only, and an admitted
// request's latency is about bound ÷ throughput, so a bound set too high
// for the throughput of the day lets every admitted request wait. Every
// window of completed requests decides once: if more than a tenth of them
// took longer than the target, the limit shrinks by a fifth (never below
// min); if none did too often and the limit was nearly reached, it grows
// by one (never above max).
type adaptive struct {
	target   time.Duration
	min, max int64
	limit    atomic.Int64

	mu         sync.Mutex
	n, slow    int
	peak       int64 // highest in flight seen in the window
	windowSize int
}

// adaptiveWindow is the number of completions per decision.
const adaptiveWindow = 50

func newAdaptive(target time.Duration, lo, hi int64) *adaptive {
	a := &adaptive{target: target, min: max(lo, 1), max: max(hi, lo, 1), windowSize: adaptiveWindow}
	a.limit.Store(a.max)
	return a
}

// current is the limit now.
func (a *adaptive) current() int64 { return a.limit.Load() }

// done records an admitted request that took d while inFlight requests
// (itself included) were being served.
func (a *adaptive) done(d time.Duration, inFlight int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if d > a.target {
		a.slow++
	}
	a.peak = max(a.peak, inFlight)
	if a.n < a.windowSize {
		return
	}
	limit := a.limit.Load()
	switch {
	case a.slow*10 > a.n:
		limit = max(a.min, limit*4/5)
	case a.peak*5 >= limit*4:
		limit = min(a.max, limit+1)
	}
	a.limit.Store(limit)
	a.n, a.slow, a.peak = 0, 0, 0
}
