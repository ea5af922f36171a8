// Package cache keeps the read-mostly catalog in memory in front of the
// PostgreSQL store. Every write to catalog.cars or catalog.parts fires
// NOTIFY catalog_changed (a trigger installed by the migrations); a listener
// empties the cache on each notification, so a committed change is served
// within the notification latency (milliseconds). While the listener is not
// connected the cache is bypassed, and every entry also expires after a TTL,
// which bounds staleness even if a notification were lost.
//
// The cache also tracks the catalog revision (catalog.revision, bumped by the
// same trigger, and read again on every notification: the payload is not
// trusted): Revision tells callers which state of the catalog the cache
// reflects, and Watch lets them wait for the next change. A call that reads Revision and then reads the
// cache gets data at least as new as that revision: the revision and the
// emptying of the cache change together.
//
// Memory is bounded: at most MaxParts parts are held (least recently used
// cars are evicted first), and at most MaxKeys car lookups.
//
// What is kept, and why (a catalog of a million parts does not fit in a
// service's memory bound, so most reads of a uniformly read catalog miss):
//   - the list of cars, and an index of it by id and by ASCII name, which
//     answers FindCar without PostgreSQL when the catalog has at most
//     MaxKeys cars (10,000 cars take ~2 MB);
//   - whole cars' parts, least recently used first out, admitted on a car's
//     second miss within a window of about as many cars as the cache holds
//     (a doorkeeper): a car read once answers its page straight from
//     PostgreSQL (a page, not the whole car), a car read again soon is
//     loaded whole and its next pages, get-pecas and quotes are hits. Under
//     uniformly random reads nearly every car is read once per window, so
//     the cache stops paying a whole-car load for each miss; a popular car
//     still stays.
package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/catalog/internal/catalog"
)

// Channel is the PostgreSQL notification channel the migrations' triggers use.
const Channel = "catalog_changed"

// revisionQuery reads the current catalog revision (migration 00005).
const revisionQuery = "SELECT n FROM catalog.revision"

// Options bound the cache.
type Options struct {
	// TTL is the longest an entry is served without being re-read.
	TTL time.Duration
	// MaxParts bounds the parts held across every cached car.
	MaxParts int
	// MaxKeys bounds the cached car lookups (by id or name), and the
	// number of cars up to which the list of cars is indexed for FindCar.
	MaxKeys int
}

// Store is a caching catalog.Store.
type Store struct {
	next catalog.Store
	opt  Options
	now  func() time.Time

	mu        sync.Mutex
	live      bool          // the listener is connected: entries may be served
	rev       int64         // last catalog revision seen; 0 before the first
	revKnown  bool          // rev is current: read since the listener last connected
	changed   chan struct{} // closed (and replaced) when watched changes
	watched   watched       // Watch's answer when changed was made
	gen       uint64        // bumped by every invalidation
	cars      *carsEntry
	loadCars  bool                          // a FindCar is loading the list of cars for the index
	keys      map[string]entry[catalog.Car] // lower(key) → car (hits only)
	parts     map[string]*list.Element      // car id → *partsEntry in lru
	partIdx   map[int64]*partsEntry         // part id → the cached car holding it
	lru       *list.List
	partCount int
	// seen and seenOld are the doorkeeper: cars whose parts missed
	// recently, not loaded whole yet (ids only, bounded by the rotation).
	seen, seenOld map[string]struct{}

	// liveRev is rev while live and revKnown, else 0 (revisions start at 1):
	// Revision reads it on every call without taking mu.
	liveRev atomic.Int64

	hits, misses kinds // resolved once: the hot path does no label lookups
	invalidated  prometheus.Counter
}

// watched is what Watch answers.
type watched struct {
	rev  int64
	live bool
}

// kinds are the counters of one metric by read kind.
type kinds struct{ cars, car, parts prometheus.Counter }

func newKinds(v *prometheus.CounterVec) kinds {
	return kinds{cars: v.WithLabelValues("cars"), car: v.WithLabelValues("car"), parts: v.WithLabelValues("parts")}
}

type entry[T any] struct {
	v       T
	expires time.Time
}

// carsEntry is the list of cars and, when it has at most MaxKeys cars, its
// index for FindCar: by id, and by lower(name) for ASCII names only. ASCII
// case folding is the same in Go and in PostgreSQL's lower(); beyond ASCII
// they may differ (with the database's locale), so other names and keys go
// to PostgreSQL as before.
type carsEntry struct {
	list    []catalog.Car
	byID    map[string]int
	byName  map[string]int
	expires time.Time
}

func newCarsEntry(cars []catalog.Car, maxIndexed int, expires time.Time) *carsEntry {
	e := &carsEntry{list: cars, expires: expires}
	if len(cars) > maxIndexed {
		return e
	}
	e.byID, e.byName = make(map[string]int, len(cars)), make(map[string]int, len(cars))
	for i, c := range cars {
		e.byID[c.ID] = i
		if isASCII(c.Name) {
			e.byName[strings.ToLower(c.Name)] = i
		}
	}
	return e
}

// find looks k (lowercased) up as PostgreSQL's find_car would: an id match
// first, then a name match. ok is false when the index cannot say.
func (e *carsEntry) find(k string) (catalog.Car, bool) {
	if e.byID == nil || !isASCII(k) {
		return catalog.Car{}, false
	}
	if i, ok := e.byID[k]; ok {
		return e.list[i], true
	}
	if i, ok := e.byName[k]; ok {
		return e.list[i], true
	}
	return catalog.Car{}, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

type partsEntry struct {
	carID   string
	parts   []catalog.Part // all parts of the car, by id
	byID    map[int64]int
	expires time.Time
}

// New wraps next. The cache serves nothing until Listen has connected.
func New(next catalog.Store, opt Options, reg prometheus.Registerer) *Store {
	if opt.TTL <= 0 {
		opt.TTL = 30 * time.Second
	}
	if opt.MaxParts <= 0 {
		opt.MaxParts = 50_000
	}
	if opt.MaxKeys <= 0 {
		opt.MaxKeys = 50_000
	}
	s := &Store{
		next: next, opt: opt, now: time.Now,
		keys: map[string]entry[catalog.Car]{}, parts: map[string]*list.Element{}, partIdx: map[int64]*partsEntry{}, lru: list.New(),
		seen: map[string]struct{}{}, seenOld: map[string]struct{}{},
		changed: make(chan struct{}),
		invalidated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "carbuild_catalog_cache_invalidations_total",
			Help: "Times the catalog cache was emptied (catalog_changed notifications and listener reconnects).",
		}),
	}
	hits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "carbuild_catalog_cache_hits_total",
		Help: "Catalog reads answered from memory, by kind (cars, car, parts).",
	}, []string{"kind"})
	misses := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "carbuild_catalog_cache_misses_total",
		Help: "Catalog reads that went to PostgreSQL, by kind (cars, car, parts).",
	}, []string{"kind"})
	s.hits, s.misses = newKinds(hits), newKinds(misses) // every kind exists from start-up
	if reg != nil {
		reg.MustRegister(hits, misses, s.invalidated)
	}
	return s
}

// Listen keeps a LISTEN connection open until ctx ends, emptying the cache on
// every notification and tracking the revision it carries. When the
// connection fails the cache is emptied and bypassed until it is back.
func (s *Store) Listen(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := s.listenOnce(ctx, pool, log)
		s.setLive(false)
		if ctx.Err() != nil {
			return
		}
		log.Warn("catalog cache listener lost; serving from the database until it is back", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (s *Store) listenOnce(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	// The session holds LISTEN state: take it out of the pool for good.
	pc := conn.Hijack()
	defer pc.Close(context.Background())
	if _, err := pc.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Read the revision only now: a change committed after this read is
	// notified to this session, so none is missed.
	rev, known, err := readRevision(ctx, pc)
	if err != nil {
		return err
	}
	if !known {
		log.Warn("catalog revision unknown: the cache works, callers see no revision (migrate the database to 00005 or later, grant SELECT on catalog.revision)")
	}
	s.connected(rev, known)
	for {
		_, err := pc.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		// The payload is not trusted: any database login may NOTIFY on any
		// channel, and a forged huge revision would stop every later one
		// from counting until the TTL (revisions never go back). A
		// notification only says "something changed"; the revision is the
		// one the table holds now, read on this connection.
		rev, ok, err := readRevision(ctx, pc)
		if err != nil {
			return err
		}
		s.notified(rev, ok)
	}
}

// readRevision reads the current revision on the listener's connection.
// A database without catalog.revision (migrations older than 00005), or a
// role not allowed to read it, is not an error: the cache works, the
// revision is unknown (known false).
func readRevision(ctx context.Context, conn *pgx.Conn) (rev int64, known bool, err error) {
	err = conn.QueryRow(ctx, revisionQuery).Scan(&rev)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42501"): // undefined_table, insufficient_privilege
		return 0, false, nil
	case err != nil:
		return 0, false, fmt.Errorf("read revision: %w", err)
	case rev <= 0:
		return 0, false, nil
	}
	return rev, true, nil
}

// Revision returns the catalog revision the cache reflects, and whether the
// cache is live (its listener connected and the revision known). Data read
// from the cache after this call is at least as new as rev. It takes no
// lock and does not allocate: it is on every read call's path.
func (s *Store) Revision() (rev int64, live bool) {
	n := s.liveRev.Load()
	return n, n > 0
}

// Watch returns the current revision and liveness (rev is the last one seen
// when not live; 0 if none yet) and a channel closed at the next change of
// either, so callers wait for changes without polling.
func (s *Store) Watch() (rev int64, live bool, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rev, s.live && s.revKnown, s.changed
}

// connected records a (re)connected listener and the revision read after
// LISTEN; known is false when it could not be read.
func (s *Store) connected(rev int64, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = true
	s.clearLocked()
	if known {
		s.rev = rev // what the database says, even if lower (a restored database)
	}
	s.revKnown = known
	s.publishLocked()
}

// notified records a catalog_changed notification of revision rev (known
// false: of an unknown revision) and empties the cache.
func (s *Store) notified(rev int64, known bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
	if known {
		// Notifications of transactions committed between LISTEN and the
		// read of the revision arrive after it: never go back.
		s.rev = max(s.rev, rev)
	}
	s.revKnown = known
	s.publishLocked()
}

func (s *Store) setLive(live bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = live
	s.clearLocked()
	s.publishLocked()
}

// publishLocked updates liveRev and wakes the watchers if Watch's answer
// changed.
func (s *Store) publishLocked() {
	cur := watched{rev: s.rev, live: s.live && s.revKnown}
	if cur.live {
		s.liveRev.Store(cur.rev)
	} else {
		s.liveRev.Store(0)
	}
	if cur == s.watched {
		return
	}
	s.watched = cur
	close(s.changed)
	s.changed = make(chan struct{})
}

// Invalidate empties the cache.
func (s *Store) Invalidate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clearLocked()
}

func (s *Store) clearLocked() {
	s.gen++
	s.cars = nil
	clear(s.keys)
	clear(s.parts)
	clear(s.partIdx)
	s.lru.Init()
	s.partCount = 0
	s.invalidated.Inc()
}

// ListCars returns every car.
func (s *Store) ListCars(ctx context.Context) ([]catalog.Car, error) {
	s.mu.Lock()
	if s.live && s.cars != nil && s.now().Before(s.cars.expires) {
		cars := s.cars.list
		s.mu.Unlock()
		s.hits.cars.Inc()
		return cars, nil
	}
	gen := s.gen
	s.mu.Unlock()
	s.misses.cars.Inc()
	return s.listCars(ctx, gen)
}

// listCars reads the list of cars and keeps it (with its index) unless the
// catalog changed since gen.
func (s *Store) listCars(ctx context.Context, gen uint64) ([]catalog.Car, error) {
	cars, err := s.next.ListCars(ctx)
	if err != nil {
		return nil, err
	}
	e := newCarsEntry(cars, s.opt.MaxKeys, time.Time{})
	s.mu.Lock()
	if s.live && s.gen == gen {
		e.expires = s.now().Add(s.opt.TTL)
		s.cars = e
	}
	s.mu.Unlock()
	return cars, nil
}

// FindCar finds a car by id or name, case-insensitively.
func (s *Store) FindCar(ctx context.Context, key string) (catalog.Car, error) {
	k := strings.ToLower(key)
	s.mu.Lock()
	if s.live && s.cars != nil && s.now().Before(s.cars.expires) {
		if car, ok := s.cars.find(k); ok {
			s.mu.Unlock()
			s.hits.car.Inc()
			return car, nil
		}
	}
	if e, ok := s.keys[k]; ok && s.live && s.now().Before(e.expires) {
		s.mu.Unlock()
		s.hits.car.Inc()
		return e.v, nil
	}
	gen := s.gen
	// Without a current list of cars, one caller loads it for the index
	// while the others ask PostgreSQL for their car.
	load := s.live && (s.cars == nil || !s.now().Before(s.cars.expires)) && !s.loadCars
	if load {
		s.loadCars = true
	}
	s.mu.Unlock()
	s.misses.car.Inc()
	if load {
		_, err := s.listCars(ctx, gen)
		s.mu.Lock()
		s.loadCars = false
		if err == nil && s.live && s.gen == gen && s.cars != nil {
			if car, ok := s.cars.find(k); ok {
				s.mu.Unlock()
				return car, nil
			}
		}
		s.mu.Unlock()
	}
	car, err := s.next.FindCar(ctx, key)
	if err != nil {
		return catalog.Car{}, err // misses (unknown models) are not cached: keys are client input
	}
	s.mu.Lock()
	if s.live && s.gen == gen {
		if len(s.keys) >= s.opt.MaxKeys {
			clear(s.keys)
		}
		s.keys[k] = entry[catalog.Car]{v: car, expires: s.now().Add(s.opt.TTL)}
	}
	s.mu.Unlock()
	return car, nil
}

// ListParts returns up to limit parts of a car after afterID, by id. A car
// admitted to the cache (its second miss within the doorkeeper's window) is
// loaded whole; until then each read asks PostgreSQL for the page alone.
func (s *Store) ListParts(ctx context.Context, carID string, afterID int64, limit int) ([]catalog.Part, error) {
	pe, err := s.carParts(ctx, carID)
	if err != nil {
		return nil, err
	}
	if pe == nil { // not admitted yet, too large to cache, or cache not live
		return s.next.ListParts(ctx, carID, afterID, limit)
	}
	all := pe.parts
	i := sort.Search(len(all), func(i int) bool { return all[i].ID > afterID })
	end := min(i+limit, len(all))
	return all[i:end:end], nil
}

// GetParts returns the parts among ids that exist. Parts of cached cars are
// answered from memory; the rest from PostgreSQL.
func (s *Store) GetParts(ctx context.Context, ids []int64) ([]catalog.Part, error) {
	out := make([]catalog.Part, 0, len(ids))
	var missing []int64
	s.mu.Lock()
	if s.live {
		now := s.now()
		for _, id := range ids {
			if pe, ok := s.partIdx[id]; ok && now.Before(pe.expires) {
				out = append(out, pe.parts[pe.byID[id]])
				continue
			}
			missing = append(missing, id)
		}
	} else {
		missing = ids
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		s.hits.parts.Inc()
		return out, nil
	}
	s.misses.parts.Inc()
	found, err := s.next.GetParts(ctx, missing)
	if err != nil {
		return nil, err
	}
	// Warm the cars these parts belong to, so the next batch is a hit. A
	// failure here only means no warming; the answer is already complete.
	warmed := map[string]bool{}
	for _, p := range found {
		if !warmed[p.CarID] {
			warmed[p.CarID] = true
			if _, err := s.carParts(ctx, p.CarID); err != nil {
				break
			}
		}
	}
	return append(out, found...), nil
}

// carParts returns the cached parts of a car, loading them on an admitted
// miss; nil when the cache is not live, the car is not admitted yet or it
// has too many parts to cache.
func (s *Store) carParts(ctx context.Context, carID string) (*partsEntry, error) {
	s.mu.Lock()
	if !s.live {
		s.mu.Unlock()
		return nil, nil
	}
	if el, ok := s.parts[carID]; ok {
		pe := el.Value.(*partsEntry)
		if s.now().Before(pe.expires) {
			s.lru.MoveToFront(el)
			s.mu.Unlock()
			s.hits.parts.Inc()
			return pe, nil
		}
		s.removeLocked(el)
	}
	admit := s.admitLocked(carID)
	gen := s.gen
	s.mu.Unlock()
	s.misses.parts.Inc()
	if !admit {
		return nil, nil
	}

	var all []catalog.Part
	var after int64
	for {
		page, err := s.next.ListParts(ctx, carID, after, catalog.MaxPageSize*10)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if len(all) > s.opt.MaxParts/2 {
			return nil, nil // one car may not take more than half of the budget
		}
		if len(page) < catalog.MaxPageSize*10 {
			break
		}
		after = page[len(page)-1].ID
	}
	pe := &partsEntry{carID: carID, parts: all, byID: make(map[int64]int, len(all))}
	for i, p := range all {
		pe.byID[p.ID] = i
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.live || s.gen != gen {
		return pe, nil // served once, not kept: the catalog changed meanwhile
	}
	if el, ok := s.parts[carID]; ok {
		s.removeLocked(el)
	}
	pe.expires = s.now().Add(s.opt.TTL)
	s.parts[carID] = s.lru.PushFront(pe)
	s.partCount += len(all)
	for _, p := range all {
		s.partIdx[p.ID] = pe
	}
	for s.partCount > s.opt.MaxParts && s.lru.Len() > 1 {
		s.removeLocked(s.lru.Back())
	}
	return pe, nil
}

// admitLocked is the doorkeeper: it reports whether a car whose parts
// missed was seen missing recently (then it is loaded whole), and otherwise
// remembers it. The window is two generations of at least as many cars as
// the cache holds: a car read again within it would likely still have been
// cached, had it been loaded the first time.
func (s *Store) admitLocked(carID string) bool {
	if _, ok := s.seen[carID]; ok {
		delete(s.seen, carID)
		return true
	}
	if _, ok := s.seenOld[carID]; ok {
		delete(s.seenOld, carID)
		return true
	}
	if len(s.seen) >= max(s.lru.Len(), minSeen) {
		s.seenOld, s.seen = s.seen, s.seenOld
		clear(s.seen)
	}
	s.seen[carID] = struct{}{}
	return false
}

// minSeen is the doorkeeper's smallest generation, so that a small catalog
// (the seed's three cars) is admitted on its second read whatever the
// cache holds.
const minSeen = 64

func (s *Store) removeLocked(el *list.Element) {
	pe := el.Value.(*partsEntry)
	s.lru.Remove(el)
	delete(s.parts, pe.carID)
	for _, p := range pe.parts {
		if s.partIdx[p.ID] == pe {
			delete(s.partIdx, p.ID)
		}
	}
	s.partCount -= len(pe.parts)
}
