// Package respcache keeps the gateway's already-encoded answers to the
// catalog's read routes (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST
// /get-pecas) in memory, so that a repeated read costs neither the gRPC hop
// to the catalog nor the JSON encoding.
//
// Correctness rests on the catalog's revision (see CatalogService.WatchRevision):
// a Watcher keeps a stream open and reports every revision and live change to
// the Cache. The cache serves and stores only while the stream is up and the
// catalog says it sees changes (live); it stores an answer only when the
// answer's X-Catalog-Revision is at least the revision last watched and no
// watch event arrived while the answer was being made; and it is emptied by
// every event that reports a new revision or live=false. A lost stream stops
// serving at once; the entries are dropped unless the stream comes back
// reporting the same revision, live (same revision means no committed change,
// which happens every 40 s when the catalog's MaxConnectionAge recycles the
// connection). A TTL bounds what a missed event could cost.
package respcache

import (
	"container/list"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Cache.
type Options struct {
	// MaxBytes bounds the memory the entries take (keys, bodies and a fixed
	// overhead per entry); the oldest entries go first.
	MaxBytes int64
	// TTL is how long an entry may be served after it was stored.
	TTL time.Duration
	// MaxKeyBody is the largest request body (POST /get-pecas) used as a key;
	// larger requests bypass the cache. Default 4 KiB.
	MaxKeyBody int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// entryOverhead approximates the bytes an entry costs beyond its key and
// body: the map slot, the list element, the struct and its headers.
const entryOverhead = 256

// entry is one stored answer.
type entry struct {
	key         string
	contentType string
	revision    int64
	body        []byte
	metadata    http.Header // Grpc-Metadata-* headers of the answer, if any
	expires     time.Time
	size        int64
	elem        *list.Element
}

// Cache holds encoded answers and the watch state that decides whether they
// may be served. Its zero value is not usable; use New.
type Cache struct {
	opts Options

	mu      sync.RWMutex
	live    bool   // the watch stream is up and the catalog sees changes
	rev     int64  // revision last watched; the entries are valid at it
	epoch   uint64 // bumped by every watch event and stream loss
	entries map[string]*entry
	order   *list.List // of *entry, oldest first (insertion order = expiry order)
	bytes   int64

	requests      *prometheus.CounterVec
	hits          prometheus.Counter
	misses        prometheus.Counter
	bypasses      prometheus.Counter
	invalidations prometheus.Counter
	bytesGauge    prometheus.Gauge
}

// New creates an empty, not yet live cache and registers its metrics on reg.
func New(reg prometheus.Registerer, o Options) *Cache {
	if o.MaxKeyBody <= 0 {
		o.MaxKeyBody = 4 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{
		opts:    o,
		entries: map[string]*entry{},
		order:   list.New(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "carbuild_gateway_cache_requests_total",
			Help: "Cacheable catalog reads (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST /get-pecas), by result: hit, miss, bypass.",
		}, []string{"result"}),
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carbuild_gateway_cache_invalidations_total",
			Help: "Times the gateway's answer cache was emptied by a catalog revision watch event or a reconnection to another revision.",
		}),
		bytesGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbuild_gateway_cache_bytes",
			Help: "Bytes held by the gateway's answer cache (keys, bodies and a fixed overhead per entry).",
		}),
	}
	c.hits = c.requests.WithLabelValues("hit")
	c.misses = c.requests.WithLabelValues("miss")
	c.bypasses = c.requests.WithLabelValues("bypass")
	reg.MustRegister(c.requests, c.invalidations, c.bytesGauge)
	return c
}

// Observe applies one message of the watch stream: the catalog's revision
// and whether it sees changes. Every call is an event: answers being made
// while it happens are not stored. The entries are dropped unless the
// catalog is live at the revision they were stored at.
func (c *Cache) Observe(revision int64, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if !live || revision != c.rev {
		c.clearLocked()
	}
	c.rev, c.live = revision, live
}

// Lost records that the watch stream ended: nothing is served or stored
// until it is back. The entries stay (unreachable) so that a reconnection
// reporting the same revision can use them again.
func (c *Cache) Lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.live = false
}

// Live reports whether the cache serves and stores answers.
func (c *Cache) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.live
}

// Len returns the number of entries held (reachable or not).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Bytes returns the bytes the entries are accounted for.
func (c *Cache) Bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytes
}

func (c *Cache) clearLocked() {
	if len(c.entries) == 0 {
		return
	}
	clear(c.entries)
	c.order.Init()
	c.bytes = 0
	c.bytesGauge.Set(0)
	c.invalidations.Inc()
}

// lookup returns the live, unexpired entry for key (nil if none), whether
// the cache is live, and the epoch to pass to store.
func (c *Cache) lookup(key string) (e *entry, live bool, epoch uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.live {
		return nil, false, c.epoch
	}
	e = c.entries[key]
	if e != nil && !c.opts.Now().Before(e.expires) {
		e = nil
	}
	return e, true, c.epoch
}

// store keeps e unless a watch event arrived since epoch was read, the
// cache is not live, or e's revision is older than the one watched.
func (c *Cache) store(e *entry, epoch uint64) bool {
	e.size = int64(len(e.key)+len(e.body)+len(e.contentType)) + entryOverhead
	for k, vs := range e.metadata {
		e.size += int64(len(k))
		for _, v := range vs {
			e.size += int64(len(v))
		}
	}
	if e.size > c.opts.MaxBytes/4 {
		return false // one answer may not push out most of the others
	}
	now := c.opts.Now()
	e.expires = now.Add(c.opts.TTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.epoch != epoch || e.revision < c.rev {
		return false
	}
	if old := c.entries[e.key]; old != nil {
		c.removeLocked(old)
	}
	// Oldest first: expired entries, then as many as the budget needs.
	for f := c.order.Front(); f != nil; f = c.order.Front() {
		old := f.Value.(*entry)
		if now.Before(old.expires) && c.bytes+e.size <= c.opts.MaxBytes {
			break
		}
		c.removeLocked(old)
	}
	e.elem = c.order.PushBack(e)
	c.entries[e.key] = e
	c.bytes += e.size
	c.bytesGauge.Set(float64(c.bytes))
	return true
}

func (c *Cache) removeLocked(e *entry) {
	c.order.Remove(e.elem)
	delete(c.entries, e.key)
	c.bytes -= e.size
	c.bytesGauge.Set(float64(c.bytes))
}

// parseRevision reads an X-Catalog-Revision value; ok is false when it is
// absent or not a number (the catalog could not vouch for the answer).
func parseRevision(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}
