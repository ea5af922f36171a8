package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder is a flush that records its batches and holds each one until
// the gate opens.
type recorder struct {
	gate    chan struct{} // closed: flushes go through
	entered chan struct{} // one value per flush started

	mu          sync.Mutex
	batches     [][]int
	inFlight    int
	maxInFlight int
	ctxErrs     []error // each flush's ctx.Err() after the gate
	deadlines   []time.Time
}

func newRecorder() *recorder {
	return &recorder{gate: make(chan struct{}), entered: make(chan struct{}, 1000)}
}

func (r *recorder) flush(ctx context.Context, items []int) []Result[string] {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(items))
	r.inFlight++
	r.maxInFlight = max(r.maxInFlight, r.inFlight)
	r.mu.Unlock()
	r.entered <- struct{}{}
	<-r.gate
	d, _ := ctx.Deadline()
	res := make([]Result[string], len(items))
	for i, it := range items {
		res[i].Value = fmt.Sprint("stored ", it)
		if it%10 == 7 { // every item ending in 7 fails, alone
			res[i] = Result[string]{Err: fmt.Errorf("item %d refused", it)}
		}
	}
	r.mu.Lock()
	r.inFlight--
	r.ctxErrs = append(r.ctxErrs, ctx.Err())
	r.deadlines = append(r.deadlines, d)
	r.mu.Unlock()
	return res
}

type answer struct {
	item  int
	value string
	err   error
}

// waitUntil polls cond (a state of the batcher, not a duration) until it
// holds; the test's own deadline bounds it.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-time.After(time.Millisecond):
		case <-t.Context().Done():
			t.Fatalf("gave up waiting until %s", what)
		}
	}
}

func TestBatchRules(t *testing.T) {
	cases := []struct {
		name string
		opts Options
		// blockers are started first, one at a time, each held inside its
		// flush: they occupy the flushers. queued calls arrive next, in
		// order, while every flusher is busy. Items are numbered from 0
		// (blockers first).
		blockers, queued int
		cancel           []int // items whose caller gives up while queued
		want             [][]int
		wantMaxInFlight  int
	}{
		{name: "a write with a free flusher is flushed at once, alone",
			opts: Options{Flushers: 1}, blockers: 1, want: [][]int{{0}}, wantMaxInFlight: 1},
		{name: "writes arriving while the flusher is busy form the next batch, in arrival order",
			opts: Options{Flushers: 1}, blockers: 1, queued: 5, want: [][]int{{0}, {1, 2, 3, 4, 5}}, wantMaxInFlight: 1},
		{name: "a batch holds at most MaxBatch writes",
			opts: Options{Flushers: 1, MaxBatch: 2}, blockers: 1, queued: 5, want: [][]int{{0}, {1, 2}, {3, 4}, {5}}, wantMaxInFlight: 1},
		{name: "at most Flushers batches are in flight",
			opts: Options{Flushers: 2, MaxBatch: 2}, blockers: 2, queued: 5, want: [][]int{{0}, {1}, {2, 3}, {4, 5}, {6}}, wantMaxInFlight: 2},
		{name: "a write given up while queued is never flushed",
			opts: Options{Flushers: 1}, blockers: 1, queued: 4, cancel: []int{2}, want: [][]int{{0}, {1, 3, 4}}, wantMaxInFlight: 1},
		{name: "given-up writes do not count against MaxBatch",
			opts: Options{Flushers: 1, MaxBatch: 2}, blockers: 1, queued: 4, cancel: []int{1, 2}, want: [][]int{{0}, {3, 4}}, wantMaxInFlight: 1},
		{name: "a queue of given-up writes flushes nothing",
			opts: Options{Flushers: 1}, blockers: 1, queued: 2, cancel: []int{1, 2}, want: [][]int{{0}}, wantMaxInFlight: 1},
		{name: "a failing write fails alone",
			opts: Options{Flushers: 1}, blockers: 1, queued: 9, want: [][]int{{0}, {1, 2, 3, 4, 5, 6, 7, 8, 9}}, wantMaxInFlight: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder()
			b := New(rec.flush, tc.opts)
			answers := make(chan answer, tc.blockers+tc.queued)
			cancels := map[int]context.CancelFunc{}
			call := func(item int) {
				ctx, cancel := context.WithCancel(t.Context())
				cancels[item] = cancel
				go func() {
					v, err := b.Do(ctx, item)
					answers <- answer{item, v, err}
				}()
			}
			for i := range tc.blockers {
				call(i)
				<-rec.entered
			}
			for i := tc.blockers; i < tc.blockers+tc.queued; i++ {
				call(i)
				waitUntil(t, fmt.Sprintf("%d writes are queued", i-tc.blockers+1), func() bool { return b.Queued() == i-tc.blockers+1 })
			}
			got := map[int]answer{}
			for _, i := range tc.cancel {
				cancels[i]()
				a := <-answers
				if a.item != i || !errors.Is(a.err, context.Canceled) {
					t.Fatalf("after giving up on %d, got answer %+v; want %d with context.Canceled", i, a, i)
				}
				got[a.item] = a
			}
			close(rec.gate)
			for range tc.blockers + tc.queued - len(tc.cancel) {
				a := <-answers
				got[a.item] = a
			}

			rec.mu.Lock()
			batches := slices.Clone(rec.batches)
			maxInFlight := rec.maxInFlight
			rec.mu.Unlock()
			// Concurrent flushers may record their batches in either order.
			slices.SortFunc(batches, func(a, b []int) int { return a[0] - b[0] })
			if diff := cmp.Diff(tc.want, batches); diff != "" {
				t.Errorf("batches (-want +got):\n%s", diff)
			}
			if maxInFlight != tc.wantMaxInFlight {
				t.Errorf("at most %d flushes in flight; want %d", maxInFlight, tc.wantMaxInFlight)
			}
			for i := range tc.blockers + tc.queued {
				a := got[i]
				switch {
				case slices.Contains(tc.cancel, i):
				case i%10 == 7:
					if a.err == nil || a.value != "" {
						t.Errorf("item %d: got %q, %v; want its own error", i, a.value, a.err)
					}
				default:
					if want := fmt.Sprint("stored ", i); a.err != nil || a.value != want {
						t.Errorf("item %d: got %q, %v; want %q", i, a.value, a.err, want)
					}
				}
			}
			if n := b.Queued(); n != 0 {
				t.Errorf("%d writes still queued", n)
			}
		})
	}
}

// A caller that gives up after its write was taken gets its context's
// error at once; the write is still flushed, under a context that caller
// cannot cancel, with the batch's latest deadline.
func TestGiveUpAfterTaken(t *testing.T) {
	t.Parallel()
	rec := newRecorder()
	b := New(rec.flush, Options{Flushers: 1})
	blocker := make(chan error, 1)
	go func() { _, err := b.Do(t.Context(), 100); blocker <- err }()
	<-rec.entered

	soon := time.Now().Add(time.Hour)
	later := soon.Add(time.Hour)
	ctx1, cancel1 := context.WithDeadline(t.Context(), soon)
	defer cancel1()
	ctx2, cancel2 := context.WithDeadline(t.Context(), later)
	defer cancel2()
	done1 := make(chan error, 1)
	go func() { _, err := b.Do(ctx1, 1); done1 <- err }()
	waitUntil(t, "the first write is queued", func() bool { return b.Queued() == 1 })
	done2 := make(chan error, 1)
	go func() { _, err := b.Do(ctx2, 2); done2 <- err }()
	waitUntil(t, "both writes are queued", func() bool { return b.Queued() == 2 })

	rec.gate <- struct{}{} // let the blocker's flush finish: the flusher takes {1, 2}
	if err := <-blocker; err != nil {
		t.Fatalf("blocker: %v", err)
	}
	<-rec.entered // the batch {1, 2} is in its flush, held at the gate
	cancel1()
	if err := <-done1; !errors.Is(err, context.Canceled) {
		t.Errorf("caller that gave up: %v; want context.Canceled", err)
	}
	close(rec.gate)
	if err := <-done2; err != nil {
		t.Errorf("the other caller: %v; want its answer", err)
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	if diff := cmp.Diff([][]int{{100}, {1, 2}}, rec.batches); diff != "" {
		t.Errorf("batches (-want +got):\n%s", diff)
	}
	if err := rec.ctxErrs[1]; err != nil {
		t.Errorf("the flush's context ended when one caller gave up: %v", err)
	}
	if d := rec.deadlines[1]; !d.Equal(later) {
		t.Errorf("flush deadline %v; want the latest caller's %v", d, later)
	}
}

func TestMissingResultIsAnError(t *testing.T) {
	t.Parallel()
	b := New(func(ctx context.Context, items []int) []Result[int] { return nil }, Options{})
	if _, err := b.Do(t.Context(), 1); err == nil {
		t.Error("a write the flush gave no result for succeeded; want an error")
	}
}

func TestDoneContextIsNotQueued(t *testing.T) {
	t.Parallel()
	flushed := false
	b := New(func(ctx context.Context, items []int) []Result[int] {
		flushed = true
		return make([]Result[int], len(items))
	}, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Do(ctx, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Do with a cancelled context: %v; want context.Canceled", err)
	}
	if flushed {
		t.Error("a write whose context had ended was flushed")
	}
}

// TestObserve checks what Observe is told, with the clock read only by the
// test: a batch held in its flush for a span the test measured took at
// least that span, and a write queued behind it waited at least that span.
func TestObserve(t *testing.T) {
	rec := newRecorder()
	var mu sync.Mutex
	var seen []Batch
	b := New(rec.flush, Options{Flushers: 1, Observe: func(o Batch) {
		mu.Lock()
		seen = append(seen, o)
		mu.Unlock()
	}})
	done := make(chan struct{}, 3)
	do := func(item int) {
		go func() {
			_, _ = b.Do(t.Context(), item)
			done <- struct{}{}
		}()
	}
	do(0)
	<-rec.entered // batch {0} is in its flush
	do(1)
	do(2)
	waitUntil(t, "two writes queued", func() bool { return b.Queued() == 2 })
	held := time.Now()
	waitUntil(t, "the clock moved", func() bool { return time.Since(held) > 0 })
	span := time.Since(held)
	close(rec.gate)
	for range 3 {
		<-done
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0].Size != 1 || seen[1].Size != 2 {
		t.Fatalf("observed %+v, want batches of 1 then 2", seen)
	}
	if seen[0].Took < span {
		t.Errorf("first batch took %v, but was held at least %v", seen[0].Took, span)
	}
	if seen[1].Waited < span {
		t.Errorf("second batch waited %v, but queued at least %v behind the first", seen[1].Waited, span)
	}
}
