// Package catalogclient is the catalog's contract for the services that
// keep catalog data in memory (docs/architecture.md, "The cache contract"):
// the revision header every catalog read answers with (Header), a Watcher
// that follows the catalog's revision stream (CatalogService.WatchRevision),
// and Cache, the one revision-validated cache the gateway and pricing both
// use; each says only what it keeps (key, value, size).
package catalogclient

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// Header is the gRPC header metadata key the catalog answers every read
// with: the revision it knew when the call started, as decimal text; absent
// while it cannot see changes.
const Header = "catalog-revision"

// Parse reads a Header value; ok is false when it is absent or not a number
// (the catalog could not vouch for the answer).
func Parse(v string) (rev int64, ok bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// Source opens the catalog's revision stream; the generated
// catalogv1.CatalogServiceClient is one.
type Source interface {
	WatchRevision(ctx context.Context, in *catalogv1.WatchRevisionRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[catalogv1.CatalogRevision], error)
}

// Follower is told what the stream carries.
type Follower interface {
	// Observe reports one message: the catalog's revision and whether it
	// sees changes (live).
	Observe(revision int64, live bool)
	// Lost reports that the stream ended (or could not be opened); until the
	// next Observe nothing vouches for cached data.
	Lost()
}

// Watcher keeps a WatchRevision stream open and reports it to a Follower
// (a Cache follows its own: see Cache.Follow).
type Watcher struct {
	log *slog.Logger
	src Source
	f   Follower
	// MinBackoff and MaxBackoff bound the wait before reopening a stream
	// that failed; it doubles on every failure in a row. A stream that ends
	// after it was healthy is reopened at once (see reopenDelay).
	MinBackoff, MaxBackoff time.Duration

	down bool // an outage has been logged and its end not yet
}

// NewWatcher watches src for f.
func NewWatcher(log *slog.Logger, src Source, f Follower) *Watcher {
	return &Watcher{log: log, src: src, f: f, MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second}
}

// healthyStream is how long a stream must have lasted for its end to count
// as routine (the catalog recycles connections every 30-40 s, and drains
// them on shutdown) rather than a failure that calls for backing off.
const healthyStream = time.Second

// reopenDelay is the reopening rule: how long to wait before opening the next
// stream, and the backoff to use after that, given how the last stream
// ended (healthy: it carried messages for at least a second) and the
// current backoff.
//
// The caches in front of the catalog are bypassed while the stream is down,
// so the first reopening after a healthy stream is immediate: when the
// instance holding the stream stops, the stream moves to another one without
// waiting (the balancer of a drained connection picks a ready instance).
// Failures in a row then wait min, 2·min, … up to max, so a catalog that is
// gone is not hammered; with another instance able to take the stream, the
// cache is live again at most max after it can.
func reopenDelay(healthy bool, backoff, minBackoff, maxBackoff time.Duration) (wait, next time.Duration) {
	if healthy {
		return 0, minBackoff
	}
	return backoff, min(2*backoff, maxBackoff)
}

// Run keeps the stream open until ctx ends. Whenever the stream is down the
// follower is told (Lost), so it neither serves nor stores.
func (w *Watcher) Run(ctx context.Context) {
	backoff := w.MinBackoff
	for {
		start := time.Now()
		n, err := w.watch(ctx)
		w.f.Lost()
		if ctx.Err() != nil {
			return
		}
		healthy := n > 0 && time.Since(start) >= healthyStream
		if healthy {
			w.log.Debug("catalog revision watch ended; reopening", "err", err)
		} else if !w.down {
			w.log.Warn("catalog revision watch failed; catalog caches bypassed until it is back", "err", err)
			w.down = true
		}
		var wait time.Duration
		wait, backoff = reopenDelay(healthy, backoff, w.MinBackoff, w.MaxBackoff)
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// watch opens one stream and applies its messages until it ends; it
// returns how many arrived and why it ended.
func (w *Watcher) watch(ctx context.Context) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := w.src.WatchRevision(ctx, &catalogv1.WatchRevisionRequest{})
	if err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		msg, err := stream.Recv()
		if err != nil {
			return n, err
		}
		if n == 0 && w.down {
			w.log.Info("catalog revision watch is back", "revision", msg.GetRevision(), "live", msg.GetLive())
			w.down = false
		}
		w.log.Debug("catalog revision", "revision", msg.GetRevision(), "live", msg.GetLive())
		w.f.Observe(msg.GetRevision(), msg.GetLive())
	}
}
