package catalogclient

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	catalogcache "github.com/carbuild/carbuild/catalog/catalogclient"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/shared/errs"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	"github.com/carbuild/carbuild/shared/grpctest"
)

// fakeCatalog answers BatchGetParts from prices (part id → centavos) with
// the catalog-revision header it is given ("" sends none). during, when
// set, runs inside the next call, after it started and before it answers.
type fakeCatalog struct {
	catalogv1.UnimplementedCatalogServiceServer
	calls atomic.Int64

	mu       sync.Mutex
	prices   map[int64]int64
	revision string
	during   func()
}

func (f *fakeCatalog) set(fn func(f *fakeCatalog)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeCatalog) BatchGetParts(ctx context.Context, req *catalogv1.BatchGetPartsRequest) (*catalogv1.BatchGetPartsResponse, error) {
	f.calls.Add(1)
	f.mu.Lock()
	during, rev := f.during, f.revision
	f.during = nil
	resp := &catalogv1.BatchGetPartsResponse{}
	for _, id := range req.GetIds() {
		n, _ := strconv.ParseInt(id, 10, 64)
		price, ok := f.prices[n]
		if !ok {
			f.mu.Unlock()
			return nil, status.Errorf(codes.NotFound, "part %s not found", id)
		}
		resp.Parts = append(resp.Parts, &catalogv1.Part{Id: id, Name: "part " + id, Category: catalogv1.PartCategory_PART_CATEGORY_ENGINE,
			Price: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: price}})
	}
	f.mu.Unlock()
	if rev != "" {
		if err := grpc.SetHeader(ctx, metadata.Pairs(catalogcache.Header, rev)); err != nil {
			return nil, err
		}
	}
	if during != nil {
		during()
	}
	return resp, nil
}

// clock is a settable time.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type fixture struct {
	reg    *prometheus.Registry
	cat    *fakeCatalog
	cache  *Cache
	client *Client
	clock  *clock
}

const testTTL = 30 * time.Second

// newFixture starts a fake catalog on bufconn and a Client with a cache in
// front of it; the test drives the watch events itself (the Watcher and the
// cache's own rules are catalog/catalogclient's, tested there).
func newFixture(t *testing.T, maxParts int) *fixture {
	t.Helper()
	cat := &fakeCatalog{prices: map[int64]int64{1: 500000, 2: 350000, 3: 80000}, revision: "5"}
	_, conn := grpctest.Serve(t, func(srv *grpc.Server) { catalogv1.RegisterCatalogServiceServer(srv, cat) })
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	cache := NewCache(reg, CacheOptions{MaxParts: maxParts, TTL: testTTL, Now: clk.Now})
	return &fixture{reg: reg, cat: cat, cache: cache, client: New(catalogv1.NewCatalogServiceClient(conn), time.Second, cache), clock: clk}
}

// counts returns the cache's hit, miss and bypass counters and the catalog
// calls made.
func (f *fixture) counts() [4]int {
	var n [4]int
	mfs, err := f.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "carbuild_pricing_parts_cache_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			i := map[string]int{"hit": 0, "miss": 1, "bypass": 2}[m.GetLabel()[0].GetValue()]
			n[i] = int(m.GetCounter().GetValue())
		}
	}
	n[3] = int(f.cat.calls.Load())
	return n
}

func wantParts(prices map[int64]int64, ids ...int64) map[int64]quote.Part {
	m := map[int64]quote.Part{}
	for _, id := range ids {
		m[id] = quote.Part{ID: id, Name: "part " + strconv.FormatInt(id, 10), Category: "engine", UnitPrice: prices[id], Currency: "BRL"}
	}
	return m
}

// step is something that happens to the cache or the catalog.
type step func(f *fixture)

func observe(rev int64, live bool) step { return func(f *fixture) { f.cache.Observe(rev, live) } }
func lost() step                        { return func(f *fixture) { f.cache.Lost() } }
func header(rev string) step {
	return func(f *fixture) { f.cat.set(func(c *fakeCatalog) { c.revision = rev }) }
}
func price(id, centavos int64) step {
	return func(f *fixture) { f.cat.set(func(c *fakeCatalog) { c.prices[id] = centavos }) }
}
func advance(d time.Duration) step { return func(f *fixture) { f.clock.add(d) } }

// duringCall runs steps inside the next catalog call: a watch event that
// arrives while the answer is on its way.
func duringCall(steps ...step) step {
	return func(f *fixture) {
		f.cat.set(func(c *fakeCatalog) {
			c.during = func() {
				for _, s := range steps {
					s(f)
				}
			}
		})
	}
}

func TestClientCache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// before runs, then Parts(first); then after runs, then Parts(second).
		before, after []step
		first, second []int64
		// wantStored is the number of parts held after the first call.
		wantStored int
		// wantCounts are hit, miss, bypass and catalog calls after both.
		wantCounts [4]int
		// wantPrices are the prices the second call must see (nil: the
		// fake's initial ones).
		wantPrices map[int64]int64
	}{
		{
			name:   "live, answer at the watched revision: stored, then a hit",
			before: []step{observe(5, true)}, first: []int64{1, 2}, second: []int64{1, 2},
			wantStored: 2, wantCounts: [4]int{1, 1, 0, 1},
		},
		{
			name:   "a subset of cached parts is a hit",
			before: []step{observe(5, true)}, first: []int64{1, 2}, second: []int64{2},
			wantStored: 2, wantCounts: [4]int{1, 1, 0, 1},
		},
		{
			name:   "one part not cached: the whole basket asks the catalog",
			before: []step{observe(5, true)}, first: []int64{1, 2}, second: []int64{1, 2, 3},
			wantStored: 2, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "answer newer than the watched revision: stored",
			before: []step{observe(5, true), header("6")}, first: []int64{1}, second: []int64{1},
			wantStored: 1, wantCounts: [4]int{1, 1, 0, 1},
		},
		{
			name:   "answer older than the watched revision: not stored",
			before: []step{observe(5, true), header("4")}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "answer without a revision (catalog not live): not stored",
			before: []step{observe(5, true), header("")}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "answer with a garbled revision: not stored",
			before: []step{observe(5, true), header("5x")}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "event at the same revision between call start and store: not stored",
			before: []step{observe(5, true), duringCall(observe(5, true))}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "new revision between call start and store: not stored, the new price is seen",
			before: []step{observe(5, true), duringCall(price(1, 510000), header("6"), observe(6, true))},
			first:  []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2}, wantPrices: map[int64]int64{1: 510000},
		},
		{
			name:   "stream lost and back at the same revision during the call: not stored",
			before: []step{observe(5, true), duringCall(lost(), observe(5, true))}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "stream lost during the call: not stored, then bypassed",
			before: []step{observe(5, true), duringCall(lost())}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 1, 1, 2},
		},
		{
			name:  "no watch yet: bypass, nothing stored",
			first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 0, 2, 2},
		},
		{
			name:   "catalog not live (live=false): bypass",
			before: []step{observe(5, false)}, first: []int64{1}, second: []int64{1},
			wantStored: 0, wantCounts: [4]int{0, 0, 2, 2},
		},
		{
			name:   "new revision: emptied, the new price is seen",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{price(1, 510000), header("6"), observe(6, true)},
			wantStored: 1, wantCounts: [4]int{0, 2, 0, 2}, wantPrices: map[int64]int64{1: 510000},
		},
		{
			name:   "live=false: emptied and bypassed",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{observe(5, false)},
			wantStored: 1, wantCounts: [4]int{0, 1, 1, 2},
		},
		{
			name:   "lost stream: cached parts are not served",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{lost()},
			wantStored: 1, wantCounts: [4]int{0, 1, 1, 2},
		},
		{
			name:   "lost stream back at the same revision: parts kept",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{lost(), observe(5, true)},
			wantStored: 1, wantCounts: [4]int{1, 1, 0, 1},
		},
		{
			name:   "lost stream back at another revision: emptied",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{lost(), price(1, 490000), header("7"), observe(7, true)},
			wantStored: 1, wantCounts: [4]int{0, 2, 0, 2}, wantPrices: map[int64]int64{1: 490000},
		},
		{
			name:   "TTL passed: a miss",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{advance(testTTL)},
			wantStored: 1, wantCounts: [4]int{0, 2, 0, 2},
		},
		{
			name:   "TTL not yet passed: a hit",
			before: []step{observe(5, true)}, first: []int64{1}, second: []int64{1},
			after:      []step{advance(testTTL - time.Nanosecond)},
			wantStored: 1, wantCounts: [4]int{1, 1, 0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, 100)
			for _, s := range tt.before {
				s(f)
			}
			if _, err := f.client.Parts(context.Background(), tt.first); err != nil {
				t.Fatalf("first Parts: %v", err)
			}
			if got := f.cache.Len(); got != tt.wantStored {
				t.Errorf("parts stored after the first call: got %d, want %d", got, tt.wantStored)
			}
			for _, s := range tt.after {
				s(f)
			}
			got, err := f.client.Parts(context.Background(), tt.second)
			if err != nil {
				t.Fatalf("second Parts: %v", err)
			}
			prices := map[int64]int64{1: 500000, 2: 350000, 3: 80000}
			for id, p := range tt.wantPrices {
				prices[id] = p
			}
			if diff := cmp.Diff(wantParts(prices, tt.second...), got); diff != "" {
				t.Errorf("second Parts (-want +got):\n%s", diff)
			}
			if got := f.counts(); got != tt.wantCounts {
				t.Errorf("hit, miss, bypass, catalog calls: got %v, want %v", got, tt.wantCounts)
			}
		})
	}
}

func TestClientCacheUnknownPart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	f.cache.Observe(5, true)
	_, err := f.client.Parts(context.Background(), []int64{1, 99})
	if !errors.Is(err, errs.NotFound) {
		t.Fatalf("Parts with an unknown id: got %v, want ErrNotFound", err)
	}
	if n := f.cache.Len(); n != 0 {
		t.Errorf("%d parts stored from a failed call", n)
	}
	if _, err := f.client.Parts(context.Background(), []int64{99}); !errors.Is(err, errs.NotFound) {
		t.Errorf("unknown id again: got %v, want ErrNotFound", err)
	}
	if got, want := f.cat.calls.Load(), int64(2); got != want {
		t.Errorf("catalog calls: got %d, want %d (unknown ids are never cached)", got, want)
	}
}

func TestClientCacheHitIsACopy(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	f.cache.Observe(5, true)
	ids := []int64{1}
	if _, err := f.client.Parts(context.Background(), ids); err != nil {
		t.Fatal(err)
	}
	got, err := f.client.Parts(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	got[1] = quote.Part{ID: 1, UnitPrice: 1}
	delete(got, 1)
	again, err := f.client.Parts(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantParts(map[int64]int64{1: 500000}, 1), again); diff != "" {
		t.Errorf("a caller's change reached the cache (-want +got):\n%s", diff)
	}
}

func TestCacheBound(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxParts int
		baskets  [][]int64
		want     int
	}{
		{"within the bound", 3, [][]int64{{1, 2}, {3}}, 3},
		{"evicts to make room", 2, [][]int64{{1, 2}, {3}}, 2},
		{"a basket larger than the bound fills it", 2, [][]int64{{1, 2, 3}}, 2},
		{"zero stores nothing", 0, [][]int64{{1}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, tt.maxParts)
			f.cache.Observe(5, true)
			for _, b := range tt.baskets {
				if _, err := f.client.Parts(context.Background(), b); err != nil {
					t.Fatal(err)
				}
			}
			if got := f.cache.Len(); got != tt.want {
				t.Errorf("parts held: got %d, want %d", got, tt.want)
			}
		})
	}
	t.Run("the newest basket is served after an eviction", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, 2)
		f.cache.Observe(5, true)
		for _, b := range [][]int64{{1, 2}, {3}, {3}} {
			if _, err := f.client.Parts(context.Background(), b); err != nil {
				t.Fatal(err)
			}
		}
		if got, want := f.cat.calls.Load(), int64(2); got != want {
			t.Errorf("catalog calls: got %d, want %d", got, want)
		}
	})
}

func BenchmarkPartsHit(b *testing.B) {
	cache := NewCache(prometheus.NewRegistry(), CacheOptions{MaxParts: 100, TTL: time.Minute})
	cache.Observe(5, true)
	c := New(nil, time.Second, cache)
	ids := []int64{1, 8, 9}
	parts := wantParts(map[int64]int64{1: 1, 8: 8, 9: 9}, ids...)
	_, _, fill := cache.GetAll(ids)
	cache.PutAll(fill, 5, parts)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Parts(ctx, ids); err != nil {
			b.Fatal(err)
		}
	}
}

func TestCacheOnFirstUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 100)
	var started atomic.Int64
	f.client.OnFirstUse(func() { started.Add(1) })
	if started.Load() != 0 {
		t.Fatal("started before any use")
	}
	for range 3 {
		if _, err := f.client.Parts(context.Background(), []int64{1}); err != nil {
			t.Fatal(err)
		}
	}
	if got := started.Load(); got != 1 {
		t.Errorf("started %d times, want 1", got)
	}
}
