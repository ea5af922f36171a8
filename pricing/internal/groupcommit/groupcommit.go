// Package groupcommit gathers concurrent writes into batches, so that one
// database transaction, and so one WAL flush, confirms many of them.
//
// The rules (each has a case in the tests):
//
//   - A write waits for nothing when a flusher is free: alone, it is
//     flushed at once. Batches form only from writes that arrive while
//     every flusher is busy, so their size follows the load by itself.
//   - At most Flushers batches are in flight at once, each of at most
//     MaxBatch writes, taken in arrival order.
//   - Every caller gets its own answer, and only after its batch's flush
//     returned: the flush decides each write's result, so one write's error
//     need not fail the others.
//   - A caller whose context ends while its write is still queued gets the
//     context's error and its write is never flushed. Once a flush took the
//     write, the caller may still stop waiting (and gets the context's
//     error) but the write's fate is the flush's.
//   - A flush runs under a context that no single caller can cancel; its
//     deadline is the latest of its callers' deadlines.
package groupcommit

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one write's outcome.
type Result[R any] struct {
	Value R
	Err   error
}

// Flush writes a batch and returns one result per item, in the items'
// order.
type Flush[T, R any] func(ctx context.Context, items []T) []Result[R]

// Options size a Batcher.
type Options struct {
	// MaxBatch is the most writes in one batch (default 64).
	MaxBatch int
	// Flushers is the most batches in flight at once (default 4): the
	// database connections the batcher keeps busy.
	Flushers int
	// FlushTimeout bounds a flush whose callers have no deadline (default
	// 30 s).
	FlushTimeout time.Duration
	// Observe, when set, is told about every batch once it is flushed.
	Observe func(Batch)
}

// Batch describes one flushed batch.
type Batch struct {
	// Size is the writes flushed together.
	Size int
	// Waited is how long the batch's oldest write queued for a flusher:
	// zero when a flusher was free, a whole flush or more when every
	// flusher was busy.
	Waited time.Duration
	// Took is the flush itself.
	Took time.Duration
}

// Batcher gathers concurrent calls of Do into batches for flush.
type Batcher[T, R any] struct {
	flush Flush[T, R]
	o     Options

	mu      sync.Mutex
	queue   []*call[T, R]
	running int // flushers working
}

// Call states.
const (
	queued int32 = iota
	taken
	abandoned
)

type call[T, R any] struct {
	ctx   context.Context
	item  T
	at    time.Time // queued
	state atomic.Int32
	done  chan Result[R] // buffered: a flush never blocks on an abandoned caller
}

// New returns a Batcher that writes with flush.
func New[T, R any](flush Flush[T, R], o Options) *Batcher[T, R] {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 64
	}
	if o.Flushers <= 0 {
		o.Flushers = 4
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = 30 * time.Second
	}
	return &Batcher[T, R]{flush: flush, o: o}
}

// Do writes item in the next batch and returns its result once the batch's
// flush has returned, or the context's error if ctx ends first.
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	var zero R
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	c := &call[T, R]{ctx: ctx, item: item, done: make(chan Result[R], 1)}
	if b.o.Observe != nil {
		c.at = time.Now()
	}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	start := b.running < b.o.Flushers
	if start {
		b.running++
	}
	b.mu.Unlock()
	if start {
		go b.flusher()
	}
	select {
	case r := <-c.done:
		return r.Value, r.Err
	case <-ctx.Done():
		if c.state.CompareAndSwap(queued, abandoned) {
			return zero, ctx.Err() // never flushed
		}
		// Taken: the flush decides. A result that is already there wins
		// over the context, as it would for a query that returned.
		select {
		case r := <-c.done:
			return r.Value, r.Err
		default:
			return zero, ctx.Err()
		}
	}
}

// Queued returns how many writes wait for a flusher (abandoned ones
// included until a flusher passes them).
func (b *Batcher[T, R]) Queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// flusher flushes batches until the queue is empty.
func (b *Batcher[T, R]) flusher() {
	for {
		batch := b.take()
		if batch == nil {
			return
		}
		b.run(batch)
	}
}

// take removes the next batch from the queue, skipping abandoned calls; nil
// (and one flusher fewer) when the queue is empty.
func (b *Batcher[T, R]) take() []*call[T, R] {
	b.mu.Lock()
	defer b.mu.Unlock()
	var batch []*call[T, R]
	n := 0
	for n < len(b.queue) && len(batch) < b.o.MaxBatch {
		c := b.queue[n]
		n++
		if c.state.CompareAndSwap(queued, taken) {
			batch = append(batch, c)
		}
	}
	clear(b.queue[:n]) // let the taken calls be collected
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil
	}
	if len(batch) == 0 {
		b.running--
		return nil
	}
	return batch
}

func (b *Batcher[T, R]) run(batch []*call[T, R]) {
	ctx, cancel := flushContext(batch, b.o.FlushTimeout)
	defer cancel()
	items := make([]T, len(batch))
	for i, c := range batch {
		items[i] = c.item
	}
	var start time.Time
	if b.o.Observe != nil {
		start = time.Now()
	}
	results := b.flush(ctx, items)
	if b.o.Observe != nil {
		b.o.Observe(Batch{Size: len(batch), Waited: start.Sub(batch[0].at), Took: time.Since(start)})
	}
	for i, c := range batch {
		var r Result[R]
		if i < len(results) {
			r = results[i]
		} else {
			r.Err = errMissingResult
		}
		c.done <- r
	}
}

// flushContext keeps the first caller's values, none of its cancellation,
// and the latest deadline of the batch (timeout when a caller has none).
func flushContext[T, R any](batch []*call[T, R], timeout time.Duration) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			latest = time.Time{}
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	base := context.WithoutCancel(batch[0].ctx)
	if latest.IsZero() {
		return context.WithTimeout(base, timeout)
	}
	return context.WithDeadline(base, latest)
}

type missingResult struct{}

func (missingResult) Error() string {
	return "groupcommit: the flush returned no result for this write"
}

var errMissingResult error = missingResult{}
