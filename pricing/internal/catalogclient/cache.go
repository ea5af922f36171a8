package catalogclient

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/catalogrev"
)

// CacheOptions configure a Cache.
type CacheOptions struct {
	// MaxParts bounds the parts held; storing more evicts arbitrary ones.
	MaxParts int
	// TTL is how long a stored part may be served. It only bounds what a
	// missed revision event could cost: every event empties the cache.
	TTL time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// cached is a stored part and when it stops being served (unix nanoseconds).
type cached struct {
	part    quote.Part
	expires int64
}

// Cache holds catalog parts and the state of the catalog's revision watch
// that decides whether they may be served; it is a catalogrev.Follower.
//
// It follows the rules of catalogrev.Gate, as the gateway's answer cache
// does: parts are served only while the watch stream is up and the catalog
// sees changes; parts read from the catalog are stored only when the
// answer's revision is at least the revision last watched and no watch event
// arrived during the call; a new revision or live=false empties the cache.
type Cache struct {
	opts CacheOptions

	start     func() // run once, at the first look-up
	startOnce sync.Once

	mu    sync.RWMutex
	gate  catalogrev.Gate // when entries may be served and kept; under mu
	parts map[int64]cached

	hits, misses, bypasses prometheus.Counter
	invalidations          prometheus.Counter
	// liveGauge and watchEvents make the watch state observable from
	// outside: whether look-ups bypass the cache now, and whether a watch
	// event happened between two look-ups (parts read across one are not
	// stored).
	liveGauge   prometheus.Gauge
	watchEvents prometheus.Counter
}

// NewCache creates an empty, not yet live cache and registers its metrics on
// reg, every result present from the start.
func NewCache(reg prometheus.Registerer, o CacheOptions) *Cache {
	if o.Now == nil {
		o.Now = time.Now
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "carbuild_pricing_parts_cache_requests_total",
		Help: "Part look-ups of quotes and orders, by result: hit (every part from memory), miss (asked the catalog; stored if allowed), bypass (cache not live: asked the catalog, nothing stored).",
	}, []string{"result"})
	c := &Cache{
		opts:  o,
		parts: map[int64]cached{},
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carbuild_pricing_parts_cache_invalidations_total",
			Help: "Times pricing's parts cache was emptied by a catalog revision watch event or a reconnection to another revision.",
		}),
		liveGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbuild_pricing_parts_cache_live",
			Help: "1 while pricing's parts cache serves and stores (its catalog revision watch is up and the catalog sees changes); 0 while every look-up bypasses it.",
		}),
		watchEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carbuild_pricing_parts_cache_watch_events_total",
			Help: "Catalog revision watch events pricing's parts cache applied: stream messages and stream ends. Parts read while one arrives are not stored.",
		}),
	}
	c.hits = requests.WithLabelValues("hit")
	c.misses = requests.WithLabelValues("miss")
	c.bypasses = requests.WithLabelValues("bypass")
	reg.MustRegister(requests, c.invalidations, c.liveGauge, c.watchEvents)
	return c
}

// OnFirstUse sets start to be run once, at the first look-up; call it
// before the cache is used. pricing starts the revision watch this way, so
// that the catalog connection is first dialled by a quote, as without the
// cache: a watch dialled at start-up, before the catalog listens, would put
// the connection in reconnect backoff and fail the first quotes.
func (c *Cache) OnFirstUse(start func()) { c.start = start }

// Observe applies one message of the watch stream. Every call is an event:
// parts being read while it happens are not stored. The parts are dropped
// unless the catalog is live at the revision they were stored at.
func (c *Cache) Observe(revision int64, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate.Observe(revision, live) {
		c.clearLocked()
	}
	c.watchedLocked()
}

// Lost records that the watch stream ended: nothing is served or stored
// until it is back. The parts stay (unreachable) so that a reconnection
// reporting the same revision can use them again.
func (c *Cache) Lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate.Lost()
	c.watchedLocked()
}

// watchedLocked publishes the watch state after an event.
func (c *Cache) watchedLocked() {
	c.watchEvents.Inc()
	if c.gate.Live() {
		c.liveGauge.Set(1)
	} else {
		c.liveGauge.Set(0)
	}
}

// Live reports whether the cache serves and stores parts.
func (c *Cache) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gate.Live()
}

// Len returns the number of parts held (reachable or not).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.parts)
}

func (c *Cache) clearLocked() {
	if len(c.parts) == 0 {
		return
	}
	clear(c.parts)
	c.invalidations.Inc()
}

// lookup returns the parts with the given ids when the cache is live and
// holds every one of them unexpired (nil otherwise), whether it is live, and
// the epoch to pass to store. It counts the result: a nil answer is a miss
// or a bypass.
func (c *Cache) lookup(ids []int64) (parts map[int64]quote.Part, live bool, epoch uint64) {
	if c.start != nil {
		c.startOnce.Do(c.start)
	}
	now := c.opts.Now().UnixNano()
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.gate.Live() {
		c.bypasses.Inc()
		return nil, false, c.gate.Epoch()
	}
	// Check first, so that a miss allocates nothing here.
	for _, id := range ids {
		e, ok := c.parts[id]
		if !ok || now >= e.expires {
			c.misses.Inc()
			return nil, true, c.gate.Epoch()
		}
	}
	parts = make(map[int64]quote.Part, len(ids))
	for _, id := range ids {
		parts[id] = c.parts[id].part
	}
	c.hits.Inc()
	return parts, true, c.gate.Epoch()
}

// store keeps parts unless a watch event arrived since epoch was read, the
// cache is not live, or the catalog's answer is older (revision) than the
// revision watched.
func (c *Cache) store(parts map[int64]quote.Part, revision int64, epoch uint64) bool {
	if c.opts.MaxParts <= 0 || len(parts) == 0 {
		return false
	}
	expires := c.opts.Now().Add(c.opts.TTL).UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gate.Keep(revision, epoch) {
		return false
	}
	// Make room: map iteration order is random, so this evicts arbitrary
	// parts (the bound is a backstop; the seed catalog has 20).
	for id := range c.parts {
		if len(c.parts)+len(parts) <= c.opts.MaxParts {
			break
		}
		if _, again := parts[id]; !again {
			delete(c.parts, id)
		}
	}
	n := 0
	for id, p := range parts {
		if _, held := c.parts[id]; !held && len(c.parts) >= c.opts.MaxParts {
			continue // a batch larger than the whole bound
		}
		c.parts[id] = cached{part: p, expires: expires}
		n++
	}
	return n > 0
}
