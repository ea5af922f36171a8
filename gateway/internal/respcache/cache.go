// Package respcache keeps the gateway's already-encoded answers to the
// catalog's read routes (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST
// /get-pecas) in memory, so that a repeated read costs neither the gRPC hop
// to the catalog nor the JSON encoding.
//
// Correctness rests on the catalog's revision (see CatalogService.WatchRevision):
// a catalogrev.Watcher keeps a stream open and reports every message to the
// Cache, which follows the rules of catalogrev.Gate: it serves and stores
// only while the stream is up and the catalog sees changes; it stores an
// answer only when its X-Catalog-Revision is at least the revision last
// watched and no watch event arrived while it was being made; a new revision
// or live=false empties it. A lost stream stops serving at once; the entries
// come back only if the stream returns at the same revision (the catalog
// recycles connections every 30-40 s). A TTL bounds what a missed event
// could cost.
//
// The keys and bodies live in a ring of MaxBytes outside the Go heap (see
// newRing): the gateway runs with GOGC=400, so every byte of live heap lets
// the heap grow by four more before a collection, and a full cache on the
// heap took the process from 39 to 61 MiB RSS under a flood of distinct
// requests. Entries are evicted oldest first, which is also expiry order.
package respcache

import (
	"bytes"
	"container/list"
	"hash/maphash"
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/shared/catalogrev"
)

// Options configure a Cache.
type Options struct {
	// MaxBytes is the size of the ring holding keys and bodies (each entry
	// also reserves entryOverhead bytes of it, which bounds the number of
	// entries and so their bookkeeping on the heap).
	MaxBytes int64
	// TTL is how long an entry may be served after it was stored.
	TTL time.Duration
	// MaxKeyBody is the largest request body (POST /get-pecas) used as a key;
	// larger requests bypass the cache. Default 4 KiB.
	MaxKeyBody int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// entryOverhead is the ring space each entry reserves beyond its key and
// body: with 8 MiB at most 16 Ki entries, whose bookkeeping (~200 bytes
// each: struct, map slot, list element) stays a few MiB of heap.
const entryOverhead = 512

// answer is a stored answer as the middleware writes it.
type answer struct {
	contentType string
	revision    string      // X-Catalog-Revision as the catalog sent it
	metadata    http.Header // Grpc-Metadata-* headers, if any
	body        []byte
}

// entry is the bookkeeping of one stored answer; its key and body are in the
// ring at pos.
type entry struct {
	answer          // body nil: it is in the ring
	hash            uint64
	pos             uint64 // ring position (monotonic) of the key, then the body
	keyLen, bodyLen int
	expires         time.Time
	elem            *list.Element
}

// end is the ring position after the entry's reserved space.
func (e *entry) end() uint64 { return e.pos + uint64(e.keyLen+e.bodyLen+entryOverhead) }

// Cache holds encoded answers and the watch state that decides whether they
// may be served. Its zero value is not usable; use New.
type Cache struct {
	opts Options
	seed maphash.Seed

	mu      sync.RWMutex
	gate    catalogrev.Gate // when entries may be served and kept; under mu
	entries map[uint64]*entry
	order   *list.List // of *entry, oldest first (insertion order = expiry order)
	ring    []byte
	head    uint64 // ring position where the next entry goes

	requests      *prometheus.CounterVec
	hits          prometheus.Counter
	misses        prometheus.Counter
	bypasses      prometheus.Counter
	invalidations prometheus.Counter
	bytesGauge    prometheus.Gauge
	// liveGauge and watchEvents make the watch state observable from
	// outside: whether reads bypass the cache now, and whether a watch event
	// happened between two reads (an answer made across one is not stored).
	liveGauge   prometheus.Gauge
	watchEvents prometheus.Counter
}

// New creates an empty, not yet live cache and registers its metrics on reg.
// The ring is reserved at once but takes memory only as it is written.
func New(reg prometheus.Registerer, o Options) *Cache {
	if o.MaxKeyBody <= 0 {
		o.MaxKeyBody = 4 << 10
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{
		opts:    o,
		seed:    maphash.MakeSeed(),
		entries: map[uint64]*entry{},
		order:   list.New(),
		ring:    newRing(int(max(o.MaxBytes, 0))),
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
			Help: "Bytes of the gateway's answer cache ring in use (keys, bodies and a fixed reservation per entry).",
		}),
		liveGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "carbuild_gateway_cache_live",
			Help: "1 while the gateway's answer cache serves and stores (its catalog revision watch is up and the catalog sees changes); 0 while every cacheable read bypasses it.",
		}),
		watchEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carbuild_gateway_cache_watch_events_total",
			Help: "Catalog revision watch events the gateway's answer cache applied: stream messages and stream ends. An answer made while one arrives is not stored.",
		}),
	}
	// Tests make many caches; the process's one lives as long as it does.
	runtime.AddCleanup(c, freeRing, c.ring)
	c.hits = c.requests.WithLabelValues("hit")
	c.misses = c.requests.WithLabelValues("miss")
	c.bypasses = c.requests.WithLabelValues("bypass")
	reg.MustRegister(c.requests, c.invalidations, c.bytesGauge, c.liveGauge, c.watchEvents)
	return c
}

// Observe applies one message of the watch stream: the catalog's revision
// and whether it sees changes. Every call is an event: answers being made
// while it happens are not stored. The entries are dropped unless the
// catalog is live at the revision they were stored at.
func (c *Cache) Observe(revision int64, live bool) {
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

// Live reports whether the cache serves and stores answers.
func (c *Cache) Live() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gate.Live()
}

// Len returns the number of entries held (reachable or not).
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

// Bytes returns the ring bytes in use, from the oldest entry to the newest
// (skipped ends of the ring included).
func (c *Cache) Bytes() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.bytesLocked()
}

func (c *Cache) bytesLocked() int64 {
	f := c.order.Front()
	if f == nil {
		return 0
	}
	return int64(c.head - f.Value.(*entry).pos)
}

func (c *Cache) clearLocked() {
	if len(c.entries) == 0 {
		return
	}
	clear(c.entries)
	c.order.Init()
	c.bytesGauge.Set(0)
	c.invalidations.Inc()
}

// slot returns the ring bytes at position pos.
func (c *Cache) slot(pos uint64, n int) []byte {
	i := pos % uint64(len(c.ring))
	return c.ring[i : i+uint64(n)]
}

// lookup returns a copy of the live, unexpired answer for key (nil if
// none), whether the cache is live, and the epoch to pass to store.
func (c *Cache) lookup(key string) (a *answer, live bool, epoch uint64) {
	h := maphash.String(c.seed, key)
	c.mu.RLock()
	defer c.mu.RUnlock()
	if !c.gate.Live() {
		return nil, false, c.gate.Epoch()
	}
	e := c.entries[h]
	if e == nil || !c.opts.Now().Before(e.expires) {
		return nil, true, c.gate.Epoch()
	}
	data := c.slot(e.pos, e.keyLen+e.bodyLen)
	if string(data[:e.keyLen]) != key {
		return nil, true, c.gate.Epoch() // another key with the same hash
	}
	cp := e.answer
	// A copy, so that the answer is written without holding the lock.
	cp.body = bytes.Clone(data[e.keyLen:])
	return &cp, true, c.gate.Epoch()
}

// store keeps a as the answer to key unless a watch event arrived since
// epoch was read, the cache is not live, or the answer's revision is older
// than the one watched.
func (c *Cache) store(key string, a *answer, revision int64, epoch uint64) bool {
	e := &entry{answer: *a, hash: maphash.String(c.seed, key), keyLen: len(key), bodyLen: len(a.body)}
	e.body = nil
	size := uint64(e.keyLen + e.bodyLen + entryOverhead)
	if int64(size) > c.opts.MaxBytes/4 {
		return false // one answer may not push out most of the others
	}
	now := c.opts.Now()
	e.expires = now.Add(c.opts.TTL)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.gate.Keep(revision, epoch) {
		return false
	}
	if old := c.entries[e.hash]; old != nil {
		c.removeLocked(old)
	}
	// The entry is contiguous: when it would cross the ring's end it starts
	// over at the beginning.
	e.pos = c.head
	if off := e.pos % uint64(len(c.ring)); off+size > uint64(len(c.ring)) {
		e.pos += uint64(len(c.ring)) - off
	}
	// Oldest first: expired entries, then those the new one would overwrite.
	for f := c.order.Front(); f != nil; f = c.order.Front() {
		old := f.Value.(*entry)
		if now.Before(old.expires) && e.end()-old.pos <= uint64(len(c.ring)) {
			break
		}
		c.removeLocked(old)
	}
	copy(c.slot(e.pos, e.keyLen), key)
	copy(c.slot(e.pos+uint64(e.keyLen), e.bodyLen), a.body)
	c.head = e.end()
	e.elem = c.order.PushBack(e)
	c.entries[e.hash] = e
	c.bytesGauge.Set(float64(c.bytesLocked()))
	return true
}

func (c *Cache) removeLocked(e *entry) {
	c.order.Remove(e.elem)
	delete(c.entries, e.hash)
	c.bytesGauge.Set(float64(c.bytesLocked()))
}
