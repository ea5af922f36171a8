package respcache

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// backend stands for the catalog behind grpc-gateway: it answers with the
// revision it is told, counts its calls, and can run a hook while it
// answers (a watch event arriving mid-request).
type backend struct {
	calls    atomic.Int64
	revision atomic.Pointer[string] // "" sends no X-Catalog-Revision
	code     atomic.Int64
	during   atomic.Pointer[func()]
	lastBody atomic.Pointer[string]
}

func (b *backend) handle(w http.ResponseWriter, r *http.Request, params map[string]string) {
	n := b.calls.Add(1)
	body, _ := io.ReadAll(r.Body)
	s := string(body)
	b.lastBody.Store(&s)
	if f := b.during.Load(); f != nil {
		(*f)()
	}
	if rev := b.revision.Load(); rev != nil && *rev != "" {
		w.Header().Set(HeaderRevision, *rev)
	}
	w.Header().Set("Content-Type", "application/json")
	if code := int(b.code.Load()); code != 0 && code != http.StatusOK {
		w.WriteHeader(code)
	}
	fmt.Fprintf(w, `{"call":%d,"path":%q,"car":%q}`, n, r.URL.RequestURI(), params["car_id"])
}

func (b *backend) setRevision(rev string) { b.revision.Store(&rev) }

type fixture struct {
	cache *Cache
	be    *backend
	mux   *runtime.ServeMux
	reg   *prometheus.Registry
	now   atomic.Pointer[time.Time]
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	f := &fixture{be: &backend{}, reg: prometheus.NewRegistry()}
	start := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	f.now.Store(&start)
	o.Now = func() time.Time { return *f.now.Load() }
	if o.MaxBytes == 0 {
		o.MaxBytes = 1 << 20
	}
	if o.TTL == 0 {
		o.TTL = 30 * time.Second
	}
	f.cache = New(f.reg, o)
	f.be.setRevision("5")
	f.mux = runtime.NewServeMux(runtime.WithMiddlewares(f.cache.Middleware))
	for _, r := range []struct{ method, path string }{
		{"GET", "/v1/cars"},
		{"GET", "/v1/cars/{car_id}/parts"},
		{"POST", "/get-pecas"},
		{"POST", "/calcular"},
		{"GET", "/v1/parts:batchGet"},
	} {
		if err := f.mux.HandlePath(r.method, r.path, f.be.handle); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) advance(d time.Duration) {
	t := f.now.Load().Add(d)
	f.now.Store(&t)
}

type reply struct {
	code                   int
	cache, revision, ctype string
	body                   string
}

func (f *fixture) do(t *testing.T, method, target, body string) reply {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	rec := httptest.NewRecorder()
	f.mux.ServeHTTP(rec, req)
	return reply{code: rec.Code, cache: rec.Header().Get(HeaderCache), revision: rec.Header().Get(HeaderRevision), ctype: rec.Header().Get("Content-Type"), body: rec.Body.String()}
}

// step is one action of a scenario: a request with the X-Cache value and
// backend call count wanted after it, or something happening to the cache
// or the backend before it.
type step struct {
	before      func(f *fixture)
	method      string
	target      string
	body        string
	wantCache   string
	wantCalls   int64
	wantEntries int // -1: don't check
}

func get(target, cache string, calls int64) step {
	return step{method: "GET", target: target, wantCache: cache, wantCalls: calls, wantEntries: -1}
}

func (s step) then(f func(*fixture)) step { s.before = f; return s }

func live(rev int64) func(*fixture) { return func(f *fixture) { f.cache.Observe(rev, true) } }

func TestMiddleware(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		steps []step
	}{
		{"not live: bypass, nothing stored", []step{
			get("/v1/cars", "bypass", 1),
			get("/v1/cars", "bypass", 2),
			get("/v1/cars", "miss", 3).then(live(5)),
			get("/v1/cars", "hit", 3),
		}},
		{"second identical request is a hit", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			get("/v1/cars", "hit", 1),
			get("/v1/cars/civic/parts?page_size=2", "miss", 2),
			get("/v1/cars/civic/parts?page_size=2", "hit", 2),
			get("/v1/cars/civic/parts?page_size=3", "miss", 3),
			get("/v1/cars/fusca/parts?page_size=2", "miss", 4),
		}},
		{"answer older than the watched revision is not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) { f.cache.Observe(5, true); f.be.setRevision("4") }),
			get("/v1/cars", "miss", 2),
			get("/v1/cars", "miss", 3).then(func(f *fixture) { f.be.setRevision("5") }),
			get("/v1/cars", "hit", 3),
		}},
		{"answer newer than the watched revision is stored, then emptied by the event", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) { f.cache.Observe(5, true); f.be.setRevision("6") }),
			get("/v1/cars", "hit", 1),
			get("/v1/cars", "miss", 2).then(live(6)),
		}},
		{"answer without a revision is not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) { f.cache.Observe(5, true); f.be.setRevision("") }),
			get("/v1/cars", "miss", 2),
		}},
		{"answer with a malformed revision is not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) { f.cache.Observe(5, true); f.be.setRevision("5x") }),
			get("/v1/cars", "miss", 2),
		}},
		{"error answer is not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) { f.cache.Observe(5, true); f.be.code.Store(503) }),
			get("/v1/cars", "miss", 2).then(func(f *fixture) { f.be.code.Store(200) }),
			get("/v1/cars", "hit", 2),
		}},
		{"event between request start and store: not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) {
				f.cache.Observe(5, true)
				ev := func() { f.cache.Observe(5, true) } // same revision: still an event
				f.be.during.Store(&ev)
			}),
			get("/v1/cars", "miss", 2).then(func(f *fixture) { f.be.during.Store(nil) }),
			get("/v1/cars", "hit", 2),
		}},
		{"new revision during the request: not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) {
				f.cache.Observe(5, true)
				f.be.setRevision("6") // as new as the event: only the event refuses it
				ev := func() { f.cache.Observe(6, true) }
				f.be.during.Store(&ev)
			}),
			{before: func(f *fixture) { f.be.during.Store(nil); f.be.setRevision("6") }, method: "GET", target: "/v1/cars", wantCache: "miss", wantCalls: 2, wantEntries: 1},
		}},
		{"stream lost during the request: not stored", []step{
			get("/v1/cars", "miss", 1).then(func(f *fixture) {
				f.cache.Observe(5, true)
				ev := func() { f.cache.Lost(); f.cache.Observe(5, true) }
				f.be.during.Store(&ev)
			}),
			{before: func(f *fixture) { f.be.during.Store(nil) }, method: "GET", target: "/v1/cars", wantCache: "miss", wantCalls: 2, wantEntries: 1},
		}},
		{"new revision empties", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			get("/v1/cars/civic/parts", "miss", 2),
			{before: live(6), method: "GET", target: "/v1/cars", wantCache: "miss", wantCalls: 3, wantEntries: 0},
		}},
		{"live=false: bypass and emptied", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			{before: func(f *fixture) { f.cache.Observe(5, false) }, method: "GET", target: "/v1/cars", wantCache: "bypass", wantCalls: 2, wantEntries: 0},
			get("/v1/cars", "miss", 3).then(live(5)),
		}},
		{"lost stream: bypass; back at the same revision: kept", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			get("/v1/cars", "bypass", 2).then(func(f *fixture) { f.cache.Lost() }),
			get("/v1/cars", "hit", 2).then(live(5)),
		}},
		{"lost stream, back at another revision: emptied", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			get("/v1/cars", "bypass", 2).then(func(f *fixture) { f.cache.Lost() }),
			{before: func(f *fixture) { f.be.setRevision("7"); f.cache.Observe(7, true) }, method: "GET", target: "/v1/cars", wantCache: "miss", wantCalls: 3, wantEntries: 1},
		}},
		{"TTL expiry", []step{
			get("/v1/cars", "miss", 1).then(live(5)),
			get("/v1/cars", "hit", 1).then(func(f *fixture) { f.advance(29 * time.Second) }),
			get("/v1/cars", "miss", 2).then(func(f *fixture) { f.advance(time.Second) }),
			get("/v1/cars", "hit", 2),
		}},
		{"compat body is the key", []step{
			{before: live(5), method: "POST", target: "/get-pecas", body: `{"modelo":"civic"}`, wantCache: "miss", wantCalls: 1, wantEntries: 1},
			{method: "POST", target: "/get-pecas", body: `{"modelo":"civic"}`, wantCache: "hit", wantCalls: 1, wantEntries: -1},
			{method: "POST", target: "/get-pecas", body: `{"modelo":"fusca"}`, wantCache: "miss", wantCalls: 2, wantEntries: 2},
			{method: "POST", target: "/get-pecas", body: `{"modelo":"fusca"}`, wantCache: "hit", wantCalls: 2, wantEntries: -1},
		}},
		{"compat body too large to be a key: bypass", []step{
			{before: live(5), method: "POST", target: "/get-pecas", body: `{"modelo":"` + strings.Repeat("x", 5000) + `"}`, wantCache: "bypass", wantCalls: 1, wantEntries: 0},
		}},
		{"other routes untouched", []step{
			{before: live(5), method: "POST", target: "/calcular", body: `{}`, wantCache: "", wantCalls: 1, wantEntries: 0},
			{method: "GET", target: "/v1/parts:batchGet?ids=1", wantCache: "", wantCalls: 2, wantEntries: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, Options{})
			var first reply
			for i, s := range tt.steps {
				if s.before != nil {
					s.before(f)
				}
				got := f.do(t, s.method, s.target, s.body)
				if got.cache != s.wantCache {
					t.Errorf("step %d %s %s: X-Cache %q, want %q", i, s.method, s.target, got.cache, s.wantCache)
				}
				if n := f.be.calls.Load(); n != s.wantCalls {
					t.Errorf("step %d %s %s: %d backend calls, want %d", i, s.method, s.target, n, s.wantCalls)
				}
				if s.wantEntries >= 0 && f.cache.Len() != s.wantEntries {
					t.Errorf("step %d: %d entries, want %d", i, f.cache.Len(), s.wantEntries)
				}
				if body := f.be.lastBody.Load(); s.body != "" && got.cache != "hit" && (body == nil || *body != s.body) {
					t.Errorf("step %d: backend got body %v, want the request's %d bytes", i, body, len(s.body))
				}
				if got.cache == "hit" {
					if got.body != first.body || got.ctype != first.ctype || got.revision != first.revision || got.code != 200 {
						t.Errorf("step %d: hit %+v differs from the answer stored %+v", i, got, first)
					}
				} else if got.cache == "miss" {
					first = got
				}
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{})
	f.do(t, "GET", "/v1/cars", "")
	f.cache.Observe(5, true)
	f.do(t, "GET", "/v1/cars", "")
	f.do(t, "GET", "/v1/cars", "")
	f.do(t, "GET", "/v1/cars", "")
	wantBytes := f.cache.Used()
	if wantBytes <= entryOverhead {
		t.Errorf("bytes = %d, want more than the overhead", wantBytes)
	}
	if got := gathered(t, f.reg, "carbuild_gateway_cache_bytes", ""); got != float64(wantBytes) {
		t.Errorf("bytes gauge = %v, want %d", got, wantBytes)
	}
	f.cache.Observe(6, true)
	f.cache.Observe(7, true) // already empty: not counted again
	if got := gathered(t, f.reg, "carbuild_gateway_cache_live", ""); got != 1 {
		t.Errorf("live gauge while live = %v, want 1", got)
	}
	f.cache.Lost()
	for _, c := range []struct {
		name, metric, result string
		want                 float64
	}{
		{"hit", "carbuild_gateway_cache_requests_total", "hit", 2},
		{"miss", "carbuild_gateway_cache_requests_total", "miss", 1},
		{"bypass", "carbuild_gateway_cache_requests_total", "bypass", 1},
		{"invalidations", "carbuild_gateway_cache_invalidations_total", "", 1},
		{"bytes", "carbuild_gateway_cache_bytes", "", 0},
		{"live after the stream was lost", "carbuild_gateway_cache_live", "", 0},
		{"watch events (3 messages, 1 loss)", "carbuild_gateway_cache_watch_events_total", "", 4},
	} {
		if got := gathered(t, f.reg, c.metric, c.result); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	// Every family is exposed from the start (docs/metrics.md is checked
	// against a scrape of an idle gateway).
	n, err := testutil.GatherAndCount(prometheus.Gatherers{f.reg})
	if err != nil || n != 7 {
		t.Errorf("gathered %d series (%v), want 7: three results, invalidations, bytes, live, watch events", n, err)
	}
}

// gathered reads the value of metric (with result as its result label, if
// any) from reg.
func gathered(t *testing.T, reg *prometheus.Registry, metric, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) == 0 || m.GetLabel()[0].GetValue() == result {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no %s{result=%q}", metric, result)
	return 0
}

func TestMemoryBound(t *testing.T) {
	t.Parallel()
	const max = 64 << 10
	f := newFixture(t, Options{MaxBytes: max})
	f.cache.Observe(5, true)
	for i := range 1000 {
		if got := f.do(t, "GET", "/v1/cars/c"+strconv.Itoa(i)+"/parts", ""); got.cache != "miss" {
			t.Fatalf("request %d: X-Cache %q, want miss", i, got.cache)
		}
		if b := f.cache.Used(); b > max {
			t.Fatalf("after %d stores: %d bytes, want at most %d", i+1, b, max)
		}
	}
	// The newest are kept, the oldest evicted.
	if got := f.do(t, "GET", "/v1/cars/c999/parts", ""); got.cache != "hit" {
		t.Errorf("newest entry: X-Cache %q, want hit", got.cache)
	}
	if got := f.do(t, "GET", "/v1/cars/c0/parts", ""); got.cache != "miss" {
		t.Errorf("oldest entry: X-Cache %q, want miss (evicted)", got.cache)
	}
	// An answer larger than a quarter of the budget is not kept.
	big := newFixture(t, Options{MaxBytes: 300})
	big.cache.Observe(5, true)
	big.do(t, "GET", "/v1/cars", "")
	if big.cache.Len() != 0 {
		t.Errorf("an answer larger than a quarter of the budget was stored")
	}
}

// TestConcurrent runs hits, misses and events at once (go test -race).
func TestConcurrent(t *testing.T) {
	t.Parallel()
	f := newFixture(t, Options{MaxBytes: 8 << 10})
	f.cache.Observe(1, true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for rev := int64(2); rev < 200; rev++ {
			f.be.setRevision(strconv.FormatInt(rev, 10))
			f.cache.Observe(rev, rev%7 != 0)
			if rev%11 == 0 {
				f.cache.Lost()
			}
			time.Sleep(100 * time.Microsecond)
		}
	}()
	for i := 0; ; i++ {
		select {
		case <-done:
			return
		default:
		}
		got := f.do(t, "GET", "/v1/cars/c"+strconv.Itoa(i%20)+"/parts", "")
		if got.code != 200 {
			t.Fatalf("status %d", got.code)
		}
	}
}

// FuzzEquivalence checks that the cache never changes an answer: in front of
// a backend whose answer depends on the whole request, every answer of the
// cached handler, hit or miss, equals the backend's own answer to it.
func FuzzEquivalence(f *testing.F) {
	f.Add(uint8(0), "", "", uint8(0), "", "")
	f.Add(uint8(1), "civic", "page_size=2", uint8(1), "Civic", "page_size=2")
	f.Add(uint8(2), "", `{"modelo":"civic"}`, uint8(2), "", `{"modelo":"civic"} `)
	f.Add(uint8(2), "a=1", `{}`, uint8(2), "a=2", `{}`)
	f.Add(uint8(1), "c%2Fd", "", uint8(1), "c/d", "")
	targets := []struct{ method, path string }{
		{"GET", "/v1/cars"},
		{"GET", "/v1/cars/%s/parts"},
		{"POST", "/get-pecas"},
	}
	// The generated GET handlers ignore the body, so the stand-in does too.
	direct := func(method, uri, body string) string {
		if method == "GET" {
			body = ""
		}
		return method + " " + uri + " " + body
	}
	c := New(prometheus.NewRegistry(), Options{MaxBytes: 1 << 20, TTL: time.Hour})
	c.Observe(5, true)
	mux := runtime.NewServeMux(runtime.WithMiddlewares(c.Middleware))
	for _, tg := range targets {
		p := strings.Replace(tg.path, "%s", "{car_id}", 1)
		if err := mux.HandlePath(tg.method, p, func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			w.Header().Set(HeaderRevision, "5")
			b, _ := io.ReadAll(r.Body)
			io.WriteString(w, direct(r.Method, r.URL.RequestURI(), string(b)))
		}); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, ta uint8, a, bodyA string, tb uint8, b, bodyB string) {
		var reqs []*http.Request
		for _, in := range []struct {
			t           uint8
			param, body string
		}{{ta, a, bodyA}, {tb, b, bodyB}, {ta, a, bodyA}} {
			tg := targets[int(in.t)%len(targets)]
			target := tg.path
			if strings.Contains(target, "%s") {
				target = strings.Replace(target, "%s", in.param, 1)
			} else if in.param != "" {
				target += "?" + in.param
			}
			req, err := http.NewRequest(tg.method, "http://gateway"+target, strings.NewReader(in.body))
			if err != nil {
				return
			}
			reqs = append(reqs, req)
		}
		for _, req := range reqs {
			body, _ := io.ReadAll(req.Body)
			want := direct(req.Method, req.URL.RequestURI(), string(body))
			req.Body = io.NopCloser(strings.NewReader(string(body)))
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code == http.StatusOK && rec.Body.String() != want {
				t.Fatalf("%s %s: answer %q (X-Cache %s), want %q", req.Method, req.URL, rec.Body, rec.Header().Get(HeaderCache), want)
			}
		}
	})
}
