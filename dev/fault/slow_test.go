package fault

import (
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
)

// TestSlowBackend puts a proxy that delays every byte by slowDelay between
// catalog and its callers (gateway and pricing). The caller's deadline
// holds: a Grpc-Timeout header bounds the whole call, pricing's
// CATALOG_TIMEOUT bounds its catalog call, and each answers 504
// DEADLINE_EXCEEDED, never before its deadline and always before the
// catalog's answer could have arrived (the latencies are logged).
// Afterwards nothing leaks: goroutines and database connections return to
// where they were.
func TestSlowBackend(t *testing.T) {
	const catalogTimeout = 500 * time.Millisecond
	// Far beyond every deadline under test, so that an answer that waited
	// for the catalog is told apart from one cut by its deadline even on
	// a loaded machine.
	const slowDelay = 5 * time.Second
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, addrs.Catalog)
	// The caches in front of the catalog are off: with them, a slow catalog
	// whose revision does not change is not asked at all, and the deadlines
	// under test would never be reached.
	s := startStack(t, stack.Config{Addrs: addrs, Env: []string{"CATALOG_ADDR=" + px.addr(), "CATALOG_TIMEOUT=" + catalogTimeout.String(),
		"GATEWAY_CACHE_TTL=0", "PARTS_CACHE_TTL=0"}})
	gwMetrics := "http://" + s.Addrs.GatewayMetrics + "/metrics"
	prMetrics := "http://" + s.Addrs.PricingMetrics + "/metrics"
	caMetrics := "http://" + s.Addrs.CatalogMetrics + "/metrics"

	quote := call{kind: "quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"8","quantity":1}]}`}
	kinds := []struct {
		name     string
		c        call
		deadline time.Duration
	}{
		{"quote, CATALOG_TIMEOUT", quote, catalogTimeout},
		{"quote, Grpc-Timeout 200m", withHeader(quote, "Grpc-Timeout", "200m"), 200 * time.Millisecond},
		{"cars, Grpc-Timeout 300m", withHeader(call{kind: "cars", method: "GET", path: "/v1/cars"}, "Grpc-Timeout", "300m"), 300 * time.Millisecond},
	}
	next := func(i int) call {
		k := kinds[i%len(kinds)]
		c := k.c
		c.kind = k.name
		return c
	}

	// Warm up (connections, pools) until every kind has been answered 200
	// a few times, then take the baseline. Before the delay a call can
	// still miss a deadline of a few hundred milliseconds on a loaded
	// machine (a 504 is what the deadline is for); any other failure means
	// the stack is broken.
	warm := startLoad(loadConfig{Rate: 50, Workers: 8, Targets: fixed(s.GatewayURL), Next: next})
	for _, k := range kinds {
		warm.waitResults(t, k.name+" answered before the delay", 10, func(r result) bool { return r.ok() && r.kind == k.name })
	}
	warmed := warm.stop()
	for _, r := range warmed {
		if !r.ok() && !r.timedOut() {
			t.Fatalf("warm-up failed before any delay: %s", r)
		}
	}
	t.Logf("slow backend: warm-up %s", summarize(warmed))
	time.Sleep(500 * time.Millisecond)
	base := gauges(t, gwMetrics, prMetrics, caMetrics)

	px.setDelay(slowDelay)
	delayedAt := time.Now()
	l := startLoad(loadConfig{Rate: 60, Workers: 64, Targets: fixed(s.GatewayURL), Next: next, Timeout: 4 * slowDelay})
	for _, k := range kinds {
		l.waitResults(t, k.name+" answered while catalog is slow", 30, func(r result) bool { return r.kind == k.name && r.start.After(delayedAt) })
	}
	rs := l.stop()
	px.setDelay(0)

	byKind := map[string][]time.Duration{}
	for _, r := range rs {
		byKind[r.kind] = append(byKind[r.kind], r.end.Sub(r.start))
		if r.err != nil || r.status != http.StatusGatewayTimeout || jsonField(r.body, "status") != "DEADLINE_EXCEEDED" {
			t.Errorf("want 504 DEADLINE_EXCEEDED while catalog is slow, got %s", r)
		}
	}
	for _, k := range kinds {
		d := byKind[k.name]
		if len(d) == 0 {
			t.Errorf("%s: no requests", k.name)
			continue
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		p50, max := d[len(d)/2], d[len(d)-1]
		t.Logf("slow backend (%v delay): %-26s deadline %-5s → %d answered 504, p50 %s, max %s",
			slowDelay, k.name, k.deadline, len(d), p50.Round(time.Millisecond), max.Round(time.Millisecond))
		// The catalog's answer needs the delay each way; an answer that
		// came sooner was cut by its deadline, not waiting for catalog.
		if max >= slowDelay {
			t.Errorf("%s: slowest answer after %s, not before the catalog could answer (%s): the deadline %s did not cut it", k.name, max, slowDelay, k.deadline)
		}
		// A deadline can't expire early: an answer before it would mean the
		// delay did not apply.
		if d[0] < k.deadline {
			t.Errorf("%s: an answer after %s, before the deadline %s: the delay did not apply", k.name, d[0], k.deadline)
		}
	}

	// Recovery: with the delay gone, calls succeed again.
	if !waitFor(loadBound, func() bool {
		c := &http.Client{Timeout: 2 * time.Second}
		resp, err := c.Post(s.GatewayURL+quote.path, "application/json", strings.NewReader(quote.body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}) {
		t.Fatalf("quotes do not succeed again after the delay was removed")
	}

	// No leak: goroutines and acquired database connections return to the
	// baseline (abandoned calls were canceled, not left running).
	var after map[string]float64
	ok := waitFor(loadBound, func() bool {
		after = gauges(t, gwMetrics, prMetrics, caMetrics)
		for name, v := range after {
			if v > base[name]+leakTolerance(name) {
				return false
			}
		}
		return true
	})
	t.Logf("slow backend: before %v, after %v (%d requests, %d abandoned calls)", base, after, len(rs), len(rs))
	if !ok {
		t.Errorf("leak: gauges did not return to the baseline: before %v, after %v", base, after)
	}
}

func leakTolerance(name string) float64 {
	if name == "pricing pgxpool_acquired_conns" {
		return 0
	}
	return 10 // goroutines come and go with idle connections and timers
}

// gauges reads the gauges the leak check compares.
func gauges(t *testing.T, gateway, pricing, catalog string) map[string]float64 {
	t.Helper()
	return map[string]float64{
		"gateway go_goroutines":          scrape(t, gateway, "go_goroutines"),
		"pricing go_goroutines":          scrape(t, pricing, "go_goroutines"),
		"catalog go_goroutines":          scrape(t, catalog, "go_goroutines"),
		"pricing pgxpool_acquired_conns": scrape(t, pricing, "pgxpool_acquired_conns"),
	}
}

func withHeader(c call, k, v string) call {
	c.headers = map[string]string{k: v}
	return c
}

// proxy forwards TCP connections to an upstream, holding every chunk of
// data, in both directions, for the current delay before passing it on.
type proxy struct {
	ln       net.Listener
	upstream string
	delay    atomic.Int64 // nanoseconds
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
	closed   chan struct{} // closed by close: held data is dropped at once
}

func startProxy(t *testing.T, upstream string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, upstream: upstream, conns: map[net.Conn]struct{}{}, closed: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string             { return p.ln.Addr().String() }
func (p *proxy) setDelay(d time.Duration) { p.delay.Store(int64(d)) }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies src to dst, each chunk held until its arrival + the delay.
func (p *proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{data: buf[:n], at: time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		if wait := time.Until(c.at.Add(time.Duration(p.delay.Load()))); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.closed: // the test is over: don't hold its cleanup for the delay
				t.Stop()
			}
		}
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range ch { // let the reader finish
	}
}

func (p *proxy) close() {
	close(p.closed)
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
