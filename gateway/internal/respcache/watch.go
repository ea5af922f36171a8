package respcache

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"

	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

// RevisionSource opens the catalog's revision stream; the generated
// catalogv1.CatalogServiceClient is one.
type RevisionSource interface {
	WatchRevision(ctx context.Context, in *catalogv1.WatchRevisionRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[catalogv1.CatalogRevision], error)
}

// Watcher keeps a WatchRevision stream open and reports what it carries to
// a Cache.
type Watcher struct {
	log   *slog.Logger
	src   RevisionSource
	cache *Cache
	// MinBackoff and MaxBackoff bound the wait before reopening a stream
	// that failed; it doubles on every failure in a row.
	MinBackoff, MaxBackoff time.Duration

	down bool // an outage has been logged and its end not yet
}

// NewWatcher watches src for c.
func NewWatcher(log *slog.Logger, src RevisionSource, c *Cache) *Watcher {
	return &Watcher{log: log, src: src, cache: c, MinBackoff: 20 * time.Millisecond, MaxBackoff: time.Second}
}

// healthyStream is how long a stream must have lasted for its end to count
// as routine (the catalog recycles connections every 30-40 s, and drains
// them on shutdown) rather than a failure that calls for backing off.
const healthyStream = time.Second

// Run keeps the stream open until ctx ends. Whenever the stream is down the
// cache is told (Lost), so it neither serves nor stores.
func (w *Watcher) Run(ctx context.Context) {
	backoff := w.MinBackoff
	for {
		start := time.Now()
		n, err := w.watch(ctx)
		w.cache.Lost()
		if ctx.Err() != nil {
			return
		}
		if n > 0 && time.Since(start) >= healthyStream {
			backoff = w.MinBackoff
			w.log.Debug("catalog revision watch ended; reopening", "err", err)
		} else {
			if !w.down {
				w.log.Warn("catalog revision watch failed; answer cache bypassed until it is back", "err", err)
				w.down = true
			}
			backoff = min(2*backoff, w.MaxBackoff)
		}
		t := time.NewTimer(backoff)
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
		w.cache.Observe(msg.GetRevision(), msg.GetLive())
	}
}
