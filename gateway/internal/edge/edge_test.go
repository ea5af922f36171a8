package edge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"

	"github.com/carbuild/carbuild/shared/auth"
)

func TestClassify(t *testing.T) {
	tests := []struct {
		method, path string
		want         Class
	}{
		{"POST", "/v1/orders", Checkout},
		{"GET", "/v1/orders/6c1f3a2e-0000-4000-8000-000000000001", Checkout},
		{"POST", "/v1/quotes", Checkout},
		{"POST", "/pagar", Checkout},
		{"POST", "/calcular", Checkout},
		{"GET", "/v1/cars", Browse},
		{"GET", "/v1/cars/civic/parts", Browse},
		{"POST", "/get-pecas", Browse},
		{"GET", "/", Browse},
		{"GET", "/v1/ordersx", Browse},
	}
	for _, tt := range tests {
		if got := Classify(httptest.NewRequest(tt.method, tt.path, nil)); got != tt.want {
			t.Errorf("Classify(%s %s) = %v, want %v", tt.method, tt.path, got, tt.want)
		}
	}
}

// TestBucket drives one client's bucket through a fake clock: a burst of 2,
// then 1 token per second.
func TestBucket(t *testing.T) {
	c := newClients(rate.Limit(1), 2, 10)
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		at       time.Duration
		wantOK   bool
		wantWait time.Duration
	}{
		{0, true, 0},
		{0, true, 0},
		{0, false, time.Second},
		{500 * time.Millisecond, false, 500 * time.Millisecond},
		{time.Second, true, 0},
		{time.Second, false, time.Second},
		{3 * time.Second, true, 0},
		{3 * time.Second, true, 0},
		{3 * time.Second, false, time.Second},
	}
	for i, s := range steps {
		wait, ok := c.allow("ip:192.0.2.1", t0.Add(s.at))
		if ok != s.wantOK || wait != s.wantWait {
			t.Errorf("step %d at %v: got ok=%v wait=%v, want ok=%v wait=%v", i, s.at, ok, wait, s.wantOK, s.wantWait)
		}
	}
}

// TestBucketsBounded: however many clients pass, at most max buckets are kept.
func TestBucketsBounded(t *testing.T) {
	c := newClients(rate.Limit(1), 5, 100)
	t0 := time.Unix(1_000_000, 0)
	for i := range 10_000 {
		c.allow(fmt.Sprintf("ip:10.0.%d.%d", i/256, i%256), t0.Add(time.Duration(i)*time.Millisecond))
		if n := len(c.m); n > 100 {
			t.Fatalf("after %d clients: %d buckets, want at most 100", i+1, n)
		}
	}
	// The newest client keeps its bucket: its second request in the same
	// instant still finds tokens.
	last := fmt.Sprintf("ip:10.0.%d.%d", 9999/256, 9999%256)
	if _, ok := c.allow(last, t0.Add(9999*time.Millisecond)); !ok {
		t.Error("the newest client's bucket was evicted")
	}
}

// blocking is a handler that holds each request until released.
type blocking struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blocking) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	b.entered <- struct{}{}
	<-b.release
	w.WriteHeader(http.StatusOK)
}

// TestInFlightBound: with room for 4 and browsing limited to half of it,
// the third concurrent browse is shed at once with 503 and Retry-After,
// checkout still gets the two places kept for it, and a place freed is
// used again.
func TestInFlightBound(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg, Options{MaxInFlight: 4, BrowseShare: 0.5})
	b := &blocking{entered: make(chan struct{}), release: make(chan struct{})}
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(http.StatusOK)
			return
		}
		b.ServeHTTP(w, r)
	}))

	var wg sync.WaitGroup
	codes := make(chan int, 8)
	hold := func(path string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
			codes <- rec.Code
		}()
		select {
		case <-b.entered: // admitted and held
		case c := <-codes:
			t.Fatalf("%s: answered %d, want admitted", path, c)
		}
	}
	call := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", path, nil))
		return rec
	}

	hold("/get-pecas")
	hold("/get-pecas")
	if rec := call("/get-pecas"); rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" {
		t.Fatalf("third browse: %d Retry-After %q, want 503 with Retry-After 1", rec.Code, rec.Header().Get("Retry-After"))
	} else {
		var body struct {
			Code    int    `json:"code"`
			Status  string `json:"status"`
			Message string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Code != 503 || body.Status != "UNAVAILABLE" || body.Message == "" {
			t.Errorf("shed body %q: want the API's error shape", rec.Body)
		}
	}
	hold("/pagar")
	hold("/v1/orders")
	if rec := call("/v1/orders"); rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("fifth request: %d, want 503", rec.Code)
	}
	if rec := call("/healthz"); rec.Code != http.StatusOK {
		t.Fatalf("/healthz: %d, want 200: health is never shed", rec.Code)
	}
	if got := testutil.ToFloat64(g.shed.WithLabelValues("overloaded", "browse")); got != 1 {
		t.Errorf("shed browse = %v, want 1", got)
	}
	if got := testutil.ToFloat64(g.shed.WithLabelValues("overloaded", "checkout")); got != 1 {
		t.Errorf("shed checkout = %v, want 1", got)
	}
	if got := g.inFlight.Load(); got != 4 {
		t.Errorf("in flight = %d, want 4", got)
	}

	// One place freed (whichever request it was): checkout is admitted again.
	b.release <- struct{}{}
	if c := <-codes; c != http.StatusOK {
		t.Fatalf("released request: %d", c)
	}
	hold("/v1/orders")
	close(b.release)
	wg.Wait()
	if got := g.inFlight.Load(); got != 0 {
		t.Errorf("in flight after all answered = %d, want 0", got)
	}
}

// TestRateLimit: each client has its own bucket; an authenticated subject is
// limited as itself, wherever it comes from; health is never limited.
// TestRateLimit checks who shares a bucket: the verified subject that
// authentication put in the context, else the peer's address (not its port).
func TestRateLimit(t *testing.T) {
	g := New(prometheus.NewRegistry(), Options{Rate: 1, Burst: 2, MaxClients: 100})
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
	call := func(addr, subject, path string) *httptest.ResponseRecorder {
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = addr
		if subject != "" {
			req = req.WithContext(auth.NewContext(req.Context(), auth.Identity{Subject: subject}))
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	steps := []struct {
		name, addr, subject, path string
		want                      int
	}{
		{"a 1", "192.0.2.1:1000", "", "/v1/cars", 200},
		{"a 2, other port", "192.0.2.1:2000", "", "/v1/cars", 200},
		{"a 3 is over the burst", "192.0.2.1:1000", "", "/v1/cars", 429},
		{"a health", "192.0.2.1:1000", "", "/readyz", 200},
		{"b has its own bucket", "192.0.2.2:1000", "", "/v1/cars", 200},
		{"subject s from a's address", "192.0.2.1:1000", "s", "/v1/cars", 200},
		{"subject t from a's address", "192.0.2.1:1000", "t", "/v1/cars", 200},
		{"subject s from elsewhere", "198.51.100.7:1", "s", "/v1/cars", 200},
		{"subject s is over its burst", "198.51.100.8:1", "s", "/v1/cars", 429},
		{"subject t still has a token", "198.51.100.8:1", "t", "/v1/cars", 200},
		{"subject t is over its burst", "192.0.2.1:1000", "t", "/v1/cars", 429},
	}
	for _, s := range steps {
		rec := call(s.addr, s.subject, s.path)
		if rec.Code != s.want {
			t.Errorf("%s: got %d, want %d", s.name, rec.Code, s.want)
		}
		if s.want == 429 && rec.Header().Get("Retry-After") != "1" {
			t.Errorf("%s: Retry-After %q, want 1", s.name, rec.Header().Get("Retry-After"))
		}
	}
}

// TestFailedVerifications checks the budget of forged tokens per address:
// failures are charged to the address, the address is refused before
// verifying once the burst is spent, other addresses are not, and the
// budget refills at the client rate.
func TestFailedVerifications(t *testing.T) {
	reg := prometheus.NewRegistry()
	g := New(reg, Options{Rate: 10, Burst: 2, MaxClients: 100})
	req := func(addr string) *http.Request {
		r := httptest.NewRequest("GET", "/v1/cars", nil)
		r.RemoteAddr = addr
		return r
	}
	for i := range 2 {
		if _, ok := g.MayVerify(req("192.0.2.1:1")); !ok {
			t.Fatalf("failure %d: refused before the burst was spent", i)
		}
		g.VerifyFailed(req("192.0.2.1:1"))
	}
	wait, ok := g.MayVerify(req("192.0.2.1:2"))
	if ok {
		t.Fatal("an address past its failure budget may still verify")
	}
	if wait <= 0 || wait > 100*time.Millisecond {
		t.Errorf("wait = %s, want (0, 100ms] at 10/s", wait)
	}
	if _, ok := g.MayVerify(req("192.0.2.2:1")); !ok {
		t.Error("another address is refused")
	}
	if got := testutil.ToFloat64(g.shed.WithLabelValues("rate_limited", "browse")); got != 1 {
		t.Errorf("rate_limited browse = %g, want 1", got)
	}
	// The peek takes nothing: the same address is refused until a token
	// is back, and the refusals do not make the wait longer.
	if w2, ok := g.MayVerify(req("192.0.2.1:2")); ok || w2 > wait {
		t.Errorf("second peek: ok=%v wait=%s, want refused and <= %s", ok, w2, wait)
	}
	var off *Guard
	if _, ok := off.MayVerify(req("192.0.2.1:1")); !ok {
		t.Error("a nil guard refuses")
	}
	off.VerifyFailed(req("192.0.2.1:1"))
}

// TestFailedVerificationsRefill drives the failure bucket with a fake clock.
func TestFailedVerificationsRefill(t *testing.T) {
	c := newClients(rate.Limit(2), 1, 10)
	t0 := time.Unix(1_000_000, 0)
	if _, ok := c.peek("k", t0); !ok {
		t.Fatal("a key without a bucket is refused")
	}
	c.allow("k", t0)
	if wait, ok := c.peek("k", t0); ok || wait != 500*time.Millisecond {
		t.Fatalf("after one failure: ok=%v wait=%s, want refused for 500ms", ok, wait)
	}
	if wait, ok := c.peek("k", t0.Add(400*time.Millisecond)); ok || wait != 100*time.Millisecond {
		t.Fatalf("400ms later: ok=%v wait=%s, want refused for 100ms", ok, wait)
	}
	if _, ok := c.peek("k", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("500ms later: still refused")
	}
}

// BenchmarkShed measures the server-side cost of refusing a request (the
// bound is full), and of admitting one, through the real guard.
func BenchmarkShed(b *testing.B) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	for _, bc := range []struct {
		name string
		o    Options
		want int
	}{
		{"admitted", Options{MaxInFlight: 128, BrowseShare: 0.75, Rate: 1e9, Burst: 1e9, MaxClients: 10}, http.StatusOK},
		{"shed overloaded", Options{MaxInFlight: 1, BrowseShare: 0.5}, http.StatusServiceUnavailable},
		{"shed rate limited", Options{Rate: 1e-9, Burst: 1, MaxClients: 10}, http.StatusTooManyRequests},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := New(prometheus.NewRegistry(), bc.o)
			h := g.Wrap(ok)
			if bc.o.MaxInFlight == 1 {
				g.inFlight.Store(1) // full: browsing's share of 1 rounds up to 1
			}
			req := httptest.NewRequest("GET", "/v1/cars", nil)
			h.ServeHTTP(httptest.NewRecorder(), req) // the rate-limited client's one token
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != bc.want {
					b.Fatalf("got %d, want %d", rec.Code, bc.want)
				}
			}
		})
	}
}
