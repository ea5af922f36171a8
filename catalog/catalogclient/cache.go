package catalogclient

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options configure a Cache. The caller says only what it keeps: the key
// and value types, their size, and the metric names.
type Options[K comparable, V any] struct {
	// Name prefixes the metric names: Name_requests_total{result},
	// Name_invalidations_total, Name_live, Name_watch_events_total and, with
	// Size, Name_bytes.
	Name string
	// Title names the cache in the metrics' help ("the gateway's answer
	// cache"); Reads says what a read is (the help of Name_requests_total).
	Title, Reads string
	// Max bounds the sum of the entries' sizes; storing more evicts the
	// oldest entries. An entry larger than Max is not stored; Max ≤ 0 stores
	// nothing.
	Max int64
	// Size is an entry's share of Max in bytes; nil counts every entry as 1
	// (Max is then a number of entries) and exports no Name_bytes.
	Size func(K, V) int64
	// TTL is how long an entry may be served after it was stored. It only
	// bounds what a missed revision event could cost: every change of
	// revision empties the cache.
	TTL time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Result is how a read was answered; its String is what the gateway's
// X-Cache header and the requests metric's result label say.
type Result uint8

// The results of a read.
const (
	// Bypass: the cache could not be used (not live, or the read has no
	// key); the answer must come from the catalog and is not stored.
	Bypass Result = iota
	// Miss: the cache is live but does not hold the answer; ask the catalog
	// and Put its answer with the Fill of the read.
	Miss
	// Hit: answered from memory.
	Hit
)

func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case Miss:
		return "miss"
	default:
		return "bypass"
	}
}

// Fill is the watch state a read began in; an answer read from the catalog
// after a Miss is stored (Put) only if that state did not change meanwhile.
type Fill struct{ epoch uint64 }

// entry is one stored value, in a list in insertion order (which is also
// expiry order: every entry lives TTL).
type entry[K comparable, V any] struct {
	key        K
	val        V
	size       int64
	expires    int64 // unix nanoseconds
	prev, next *entry[K, V]
}

// Cache is a revision-validated cache of catalog data: it follows the
// catalog's revision stream (it is a Follower; see Follow) and applies the
// rules of gate to every read and store. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	opts Options[K, V]

	mu             sync.RWMutex
	gate           gate // when entries may be served and kept
	entries        map[K]*entry[K, V]
	oldest, newest *entry[K, V]
	used           int64 // sum of the entries' sizes

	results       [3]prometheus.Counter // by Result
	invalidations prometheus.Counter
	bytes         prometheus.Gauge // nil without Options.Size
	// live and watchEvents make the watch state observable from outside:
	// whether reads bypass the cache now, and whether a watch event happened
	// between two reads (an answer read across one is not stored).
	live        prometheus.Gauge
	watchEvents prometheus.Counter
}

// New creates an empty, not yet live cache and registers its metrics on reg,
// every result present from the start.
func New[K comparable, V any](reg prometheus.Registerer, o Options[K, V]) *Cache[K, V] {
	if o.Now == nil {
		o.Now = time.Now
	}
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: o.Name + "_requests_total",
		Help: o.Reads + ", by result: hit (answered from memory), miss (asked the catalog; stored if allowed), bypass (cache not live, or no key: asked the catalog, nothing stored).",
	}, []string{"result"})
	c := &Cache[K, V]{
		opts:    o,
		entries: map[K]*entry[K, V]{},
		invalidations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: o.Name + "_invalidations_total",
			Help: "Times " + o.Title + " was emptied by a catalog revision watch event or a reconnection to another revision.",
		}),
		live: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: o.Name + "_live",
			Help: "1 while " + o.Title + " serves and stores (its catalog revision watch is up and the catalog sees changes); 0 while every read bypasses it.",
		}),
		watchEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: o.Name + "_watch_events_total",
			Help: "Catalog revision watch events " + o.Title + " applied: stream messages and stream ends. An answer read while one arrives is not stored.",
		}),
	}
	for r := range c.results {
		c.results[r] = requests.WithLabelValues(Result(r).String())
	}
	reg.MustRegister(requests, c.invalidations, c.live, c.watchEvents)
	if o.Size != nil {
		c.bytes = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: o.Name + "_bytes",
			Help: "Bytes held by " + o.Title + " (as its owner sizes an entry), at most its bound.",
		})
		reg.MustRegister(c.bytes)
	}
	return c
}

// Follow keeps the catalog's revision stream open for the cache until ctx
// ends.
func (c *Cache[K, V]) Follow(ctx context.Context, log *slog.Logger, src Source) {
	NewWatcher(log, src, c).Run(ctx)
}

// Observe applies one message of the watch stream. Every call is an event:
// answers being read while it happens are not stored. The entries are
// dropped unless the catalog is live at the revision they were stored at.
func (c *Cache[K, V]) Observe(revision int64, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gate.Observe(revision, live) {
		c.clearLocked()
	}
	c.watchedLocked()
}

// Lost records that the watch stream ended: nothing is served or stored
// until it is back. The entries stay (unreachable) so that a reconnection
// reporting the same revision can use them again.
func (c *Cache[K, V]) Lost() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gate.Lost()
	c.watchedLocked()
}

// watchedLocked publishes the watch state after an event.
func (c *Cache[K, V]) watchedLocked() {
	c.watchEvents.Inc()
	if c.gate.Live() {
		c.live.Set(1)
	} else {
		c.live.Set(0)
	}
}

// Live reports whether the cache serves and stores.
func (c *Cache[K, V]) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gate.Live()
}

// Len returns the number of entries held (reachable or not).
func (c *Cache[K, V]) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Used returns the sum of the entries' sizes.
func (c *Cache[K, V]) Used() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.used
}

// Bypass counts a read that could not use the cache although it may be
// live (it has no key).
func (c *Cache[K, V]) Bypass() { c.results[Bypass].Inc() }

// Get looks key up and counts the read. On a Miss, ask the catalog and Put
// its answer with the Fill; on a Bypass the answer will not be stored.
func (c *Cache[K, V]) Get(key K) (v V, r Result, f Fill) {
	now := c.opts.Now().UnixNano()
	c.mu.RLock()
	f, r = Fill{c.gate.Epoch()}, Bypass
	if c.gate.Live() {
		r = Miss
		if e := c.entries[key]; e != nil && now < e.expires {
			v, r = e.val, Hit
		}
	}
	c.mu.RUnlock()
	c.results[r].Inc()
	return v, r, f
}

// GetAll is Get for a read that needs every key: a Hit returns all of them
// (in a new map), a Miss or Bypass none.
func (c *Cache[K, V]) GetAll(keys []K) (vs map[K]V, r Result, f Fill) {
	now := c.opts.Now().UnixNano()
	c.mu.RLock()
	f, r = Fill{c.gate.Epoch()}, Bypass
	if c.gate.Live() {
		r = Hit
		for _, k := range keys { // check first, so that a miss allocates nothing
			if e := c.entries[k]; e == nil || now >= e.expires {
				r = Miss
				break
			}
		}
	}
	if r == Hit {
		vs = make(map[K]V, len(keys))
		for _, k := range keys {
			vs[k] = c.entries[k].val
		}
	}
	c.mu.RUnlock()
	c.results[r].Inc()
	return vs, r, f
}

// Put stores v as the answer to key, read from the catalog at revision
// after a read that returned f. It reports whether it was stored: not if a
// watch event arrived since f, the cache is not live, the answer is older
// than the revision watched, or it is larger than the bound.
func (c *Cache[K, V]) Put(f Fill, revision int64, key K, v V) bool {
	now := c.opts.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gate.Keep(revision, f.epoch) {
		return false
	}
	return c.putLocked(now, key, v)
}

// PutAll is Put for every entry of vs (one answer of the catalog).
func (c *Cache[K, V]) PutAll(f Fill, revision int64, vs map[K]V) bool {
	now := c.opts.Now().UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gate.Keep(revision, f.epoch) {
		return false
	}
	stored := false
	for k, v := range vs {
		stored = c.putLocked(now, k, v) || stored
	}
	return stored
}

// putLocked stores v at now (unix nanoseconds).
func (c *Cache[K, V]) putLocked(now int64, key K, v V) bool {
	size := int64(1)
	if c.opts.Size != nil {
		size = c.opts.Size(key, v)
	}
	if size > c.opts.Max {
		return false // also Max ≤ 0: the cache stores nothing
	}
	if old := c.entries[key]; old != nil {
		c.removeLocked(old)
	}
	// Oldest first: expired entries, then as many as the new one needs.
	for e := c.oldest; e != nil && (now >= e.expires || c.used+size > c.opts.Max); e = c.oldest {
		c.removeLocked(e)
	}
	e := &entry[K, V]{key: key, val: v, size: size, expires: now + int64(c.opts.TTL), prev: c.newest}
	if c.newest != nil {
		c.newest.next = e
	} else {
		c.oldest = e
	}
	c.newest = e
	c.entries[key] = e
	c.used += size
	c.setBytesLocked()
	return true
}

func (c *Cache[K, V]) removeLocked(e *entry[K, V]) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.oldest = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.newest = e.prev
	}
	delete(c.entries, e.key)
	c.used -= e.size
	c.setBytesLocked()
}

func (c *Cache[K, V]) clearLocked() {
	if len(c.entries) == 0 {
		return
	}
	clear(c.entries)
	c.oldest, c.newest, c.used = nil, nil, 0
	c.setBytesLocked()
	c.invalidations.Inc()
}

func (c *Cache[K, V]) setBytesLocked() {
	if c.bytes != nil {
		c.bytes.Set(float64(c.used))
	}
}
