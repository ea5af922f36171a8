package catalogclient_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/carbuild/carbuild/catalog/catalogclient"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
)

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

const testTTL = 30 * time.Second

// newCache returns a cache of strings sized len(key)+len(value), bounded
// to max bytes, on a settable clock.
func newCache(t testing.TB, max int64) (*catalogclient.Cache[string, string], *clock, *prometheus.Registry) {
	t.Helper()
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	c := catalogclient.New(reg, catalogclient.Options[string, string]{
		Name: "test_cache", Title: "the test cache", Reads: "Test reads",
		Max:  max,
		Size: func(k, v string) int64 { return int64(len(k) + len(v)) },
		TTL:  testTTL,
		Now:  clk.Now,
	})
	return c, clk, reg
}

// step is one operation on the cache and what it must give.
type step struct {
	do   string // observe, lost, get, getall, put, putall, wait
	rev  int64  // observe, put, putall: the revision
	live bool   // observe
	keys string // get: the key; getall, putall: space-separated keys; put: the key
	val  string // put: the value; get: the wanted value
	wait time.Duration

	want     catalogclient.Result // get, getall
	wantKept bool                 // put, putall: with the Fill of the last get
}

// TestCacheRules is the contract, one rule a row: each row runs its steps
// on a new cache bounded to 16 bytes (keys and values of one byte each).
func TestCacheRules(t *testing.T) {
	t.Parallel()
	const (
		hit, miss, bypass = catalogclient.Hit, catalogclient.Miss, catalogclient.Bypass
	)
	live5 := step{do: "observe", rev: 5, live: true}
	tests := []struct {
		name              string
		steps             []step
		wantLen           int
		wantUsed          int64
		wantInvalidations float64
	}{
		{"not live before the first message: bypassed, nothing kept", []step{
			{do: "get", keys: "a", want: bypass},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: false},
		}, 0, 0, 0},
		{"live: a miss stored at the watched revision is then a hit", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "get", keys: "a", val: "1", want: hit},
		}, 1, 2, 0},
		{"an answer newer than the watched revision is kept", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 6, keys: "a", val: "1", wantKept: true},
		}, 1, 2, 0},
		{"an answer older than the watched revision is not", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 4, keys: "a", val: "1", wantKept: false},
			{do: "get", keys: "a", want: miss},
		}, 0, 0, 0},
		{"an event during the fill: not kept, even at the same revision", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			live5,
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: false},
		}, 0, 0, 0},
		{"a stream loss during the fill: not kept", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "lost"},
			live5,
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: false},
		}, 0, 0, 0},
		{"a bypassed read is not kept once live", []step{
			{do: "get", keys: "a", want: bypass},
			live5,
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: false},
		}, 0, 0, 0},
		{"a new revision empties", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "observe", rev: 6, live: true},
			{do: "get", keys: "a", want: miss},
		}, 0, 0, 1},
		{"live=false empties and bypasses", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "observe", rev: 5, live: false},
			{do: "get", keys: "a", want: bypass},
		}, 0, 0, 1},
		{"a lost stream bypasses; back at the same revision the entries serve again", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "lost"},
			{do: "get", keys: "a", want: bypass},
			live5,
			{do: "get", keys: "a", val: "1", want: hit},
		}, 1, 2, 0},
		{"a lost stream back at another revision empties", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "lost"},
			{do: "observe", rev: 7, live: true},
			{do: "get", keys: "a", want: miss},
		}, 0, 0, 1},
		{"an entry expires after the TTL", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "wait", wait: testTTL - time.Nanosecond},
			{do: "get", keys: "a", val: "1", want: hit},
			{do: "wait", wait: time.Nanosecond},
			{do: "get", keys: "a", want: miss},
		}, 1, 2, 0},
		{"an expired entry is dropped by the next store", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "wait", wait: testTTL},
			{do: "get", keys: "b", want: miss},
			{do: "put", rev: 5, keys: "b", val: "2", wantKept: true},
		}, 1, 2, 0},
		{"bounded: storing over the bound evicts the oldest", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "v", wantKept: true},
			{do: "putall", rev: 5, keys: "b c d e f g h", wantKept: true}, // 16 bytes: full
			{do: "get", keys: "i", want: miss},
			{do: "put", rev: 5, keys: "i", val: "v", wantKept: true},
			{do: "getall", keys: "b c d e f g h i", want: hit},
		}, 8, 16, 0},
		{"an entry larger than the bound is not stored", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: strings.Repeat("x", 16), wantKept: false},
		}, 0, 0, 0},
		{"storing a key again replaces its entry", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "put", rev: 5, keys: "a", val: "1", wantKept: true},
			{do: "get", keys: "a", val: "1", want: hit},
			{do: "put", rev: 5, keys: "a", val: "22", wantKept: true},
			{do: "get", keys: "a", val: "22", want: hit},
		}, 1, 3, 0},
		{"getall: a hit only when every key is held", []step{
			live5,
			{do: "get", keys: "a", want: miss},
			{do: "putall", rev: 5, keys: "a b", wantKept: true},
			{do: "getall", keys: "a b", want: hit},
			{do: "getall", keys: "a b c", want: miss},
			{do: "observe", rev: 5, live: false},
			{do: "getall", keys: "a", want: bypass},
		}, 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, clk, reg := newCache(t, 16)
			var fill catalogclient.Fill
			for i, s := range tt.steps {
				switch s.do {
				case "observe":
					c.Observe(s.rev, s.live)
				case "lost":
					c.Lost()
				case "wait":
					clk.add(s.wait)
				case "get":
					var v string
					var r catalogclient.Result
					v, r, fill = c.Get(s.keys)
					if r != s.want || v != s.val {
						t.Fatalf("step %d: Get(%q) = %q, %v; want %q, %v", i, s.keys, v, r, s.val, s.want)
					}
				case "getall":
					keys := strings.Fields(s.keys)
					vs, r, _ := c.GetAll(keys)
					if r != s.want || (r == catalogclient.Hit) != (len(vs) == len(keys)) {
						t.Fatalf("step %d: GetAll(%q) = %v, %v; want %v", i, keys, vs, r, s.want)
					}
				case "put":
					if kept := c.Put(fill, s.rev, s.keys, s.val); kept != s.wantKept {
						t.Fatalf("step %d: Put(%q at %d) = %v; want %v", i, s.keys, s.rev, kept, s.wantKept)
					}
				case "putall":
					vs := map[string]string{}
					for _, k := range strings.Fields(s.keys) {
						vs[k] = "v"
					}
					if kept := c.PutAll(fill, s.rev, vs); kept != s.wantKept {
						t.Fatalf("step %d: PutAll(%q at %d) = %v; want %v", i, s.keys, s.rev, kept, s.wantKept)
					}
				default:
					t.Fatalf("step %d: unknown %q", i, s.do)
				}
			}
			if got := c.Len(); got != tt.wantLen {
				t.Errorf("Len = %d; want %d", got, tt.wantLen)
			}
			if got := c.Used(); got != tt.wantUsed {
				t.Errorf("Used = %d; want %d", got, tt.wantUsed)
			}
			if got := value(t, reg, "test_cache_invalidations_total"); got != tt.wantInvalidations {
				t.Errorf("invalidations = %v; want %v", got, tt.wantInvalidations)
			}
		})
	}
}

// value reads a counter or gauge without labels from reg.
func value(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestCacheNothingStoredWithoutBound(t *testing.T) {
	t.Parallel()
	c, _, _ := newCache(t, 0)
	c.Observe(5, true)
	_, _, f := c.Get("a")
	if c.Put(f, 5, "a", "") {
		t.Error("stored with Max 0")
	}
}

// TestCacheMetrics checks the metrics every user's tests and dashboards
// read: requests by result (all present from the start), the live gauge,
// watch events, invalidations and bytes.
func TestCacheMetrics(t *testing.T) {
	t.Parallel()
	c, _, reg := newCache(t, 16)
	want := func(step string, text string) {
		t.Helper()
		if err := testutil.GatherAndCompare(reg, strings.NewReader(text),
			"test_cache_requests_total", "test_cache_live", "test_cache_watch_events_total", "test_cache_invalidations_total", "test_cache_bytes"); err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	const help = `# HELP test_cache_bytes Bytes held by the test cache (as its owner sizes an entry), at most its bound.
# TYPE test_cache_bytes gauge
# HELP test_cache_invalidations_total Times the test cache was emptied by a catalog revision watch event or a reconnection to another revision.
# TYPE test_cache_invalidations_total counter
# HELP test_cache_live 1 while the test cache serves and stores (its catalog revision watch is up and the catalog sees changes); 0 while every read bypasses it.
# TYPE test_cache_live gauge
# HELP test_cache_requests_total Test reads, by result: hit (answered from memory), miss (asked the catalog; stored if allowed), bypass (cache not live, or no key: asked the catalog, nothing stored).
# TYPE test_cache_requests_total counter
# HELP test_cache_watch_events_total Catalog revision watch events the test cache applied: stream messages and stream ends. An answer read while one arrives is not stored.
# TYPE test_cache_watch_events_total counter
`
	series := func(bytes, inval, live, events, hit, miss, bypass int) string {
		return help + fmt.Sprintf(`test_cache_bytes %d
test_cache_invalidations_total %d
test_cache_live %d
test_cache_requests_total{result="bypass"} %d
test_cache_requests_total{result="hit"} %d
test_cache_requests_total{result="miss"} %d
test_cache_watch_events_total %d
`, bytes, inval, live, bypass, hit, miss, events)
	}
	want("new", series(0, 0, 0, 0, 0, 0, 0))
	c.Get("a")
	c.Bypass()
	want("two bypasses", series(0, 0, 0, 0, 0, 0, 2))
	c.Observe(5, true)
	_, _, f := c.Get("a")
	c.Put(f, 5, "a", "123")
	c.Get("a")
	want("live, stored, hit", series(4, 0, 1, 1, 1, 1, 2))
	c.Lost()
	want("lost", series(4, 0, 0, 2, 1, 1, 2))
	c.Observe(6, true)
	want("new revision", series(0, 1, 1, 3, 1, 1, 2))
}

// TestCacheFollows runs the cache behind a real Watcher: the stream's
// messages and its end reach the cache.
func TestCacheFollows(t *testing.T) {
	t.Parallel()
	c, _, _ := newCache(t, 16)
	rs, srv, _ := startFake(t, c)
	eventually := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting until %s", what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	ch := rs.Next(t)
	ch <- &catalogv1.CatalogRevision{Revision: 5, Live: true}
	eventually("live", c.Live)
	_, _, f := c.Get("a")
	if !c.Put(f, 5, "a", "1") {
		t.Fatal("not stored while live")
	}
	ch <- &catalogv1.CatalogRevision{Revision: 6, Live: true}
	eventually("emptied by the new revision", func() bool { return c.Len() == 0 })
	srv.Stop()
	eventually("not live once the catalog is gone", func() bool { return !c.Live() })
}

// BenchmarkGet is a hit and a miss of the generic cache (the gateway's and
// pricing's benchmarks add their own work around it).
func BenchmarkGet(b *testing.B) {
	c, _, _ := newCache(b, 1<<20)
	c.Observe(5, true)
	_, _, f := c.Get("a")
	c.Put(f, 5, "a", "1")
	b.Run("hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, r, _ := c.Get("a"); r != catalogclient.Hit {
				b.Fatal(r)
			}
		}
	})
	b.Run("miss", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, r, _ := c.Get("b"); r != catalogclient.Miss {
				b.Fatal(r)
			}
		}
	})
}
