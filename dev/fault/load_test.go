package fault

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
)

// call is one request the load generator can send.
type call struct {
	kind    string // "cars", "parts", "quote", "order", ...
	method  string
	path    string
	body    string
	headers map[string]string
	key     string // idempotency key of an order
}

// request is c as an HTTP request to the gateway at base: a body is JSON,
// as the gateway demands.
func (c call) request(base string) (*http.Request, error) {
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, base+c.path, body)
	if err != nil {
		return nil, err
	}
	if c.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	return req, nil
}

// result is what happened to one request.
type result struct {
	call
	target     string
	start, end time.Time
	status     int // 0: no HTTP answer
	err        error
	body       string
}

func (r result) ok() bool { return r.err == nil && r.status >= 200 && r.status < 300 }

// timedOut reports whether the gateway answered 504: the call outlasted its
// deadline. Before a fault is injected that can only be a stalled machine,
// which the tests log instead of counting as the fault's doing.
func (r result) timedOut() bool { return r.err == nil && r.status == http.StatusGatewayTimeout }

func (r result) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s %s %s at %s: %v (after %s)", r.kind, r.method, r.path, r.start.Format("15:04:05.000"), r.err, r.end.Sub(r.start).Round(time.Millisecond))
	}
	return fmt.Sprintf("%s %s %s at %s: %d %s (after %s)", r.kind, r.method, r.path, r.start.Format("15:04:05.000"), r.status, strings.TrimSpace(r.body), r.end.Sub(r.start).Round(time.Millisecond))
}

// loadConfig shapes a steady load.
type loadConfig struct {
	// Rate is the request rate (requests per second over all workers).
	Rate int
	// Workers bounds the requests in flight.
	Workers int
	// Targets returns the base URLs to send to now (round-robin over them);
	// a fixed gateway URL in most tests, the ready gateways in the drain test.
	Targets func() []string
	// Next returns the i-th request.
	Next func(i int) call
	// Timeout is the client's timeout per request.
	Timeout time.Duration
}

// load is a running steady load.
type load struct {
	cfg     loadConfig
	client  *http.Client
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	results []result
	n       atomic.Int64
}

// startLoad sends cfg.Rate requests per second until stop is called.
func startLoad(cfg loadConfig) *load {
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{
		cfg:    cfg,
		client: &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers, IdleConnTimeout: 30 * time.Second}},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	tokens := make(chan int)
	var wg sync.WaitGroup
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range tokens {
				l.record(l.do(i))
			}
		}()
	}
	go func() {
		defer close(l.done)
		defer wg.Wait()
		defer close(tokens)
		tick := time.NewTicker(time.Second / time.Duration(cfg.Rate))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case tokens <- i:
			case <-ctx.Done():
				return
			default: // every worker busy: this tick is skipped (bounded in flight)
			}
		}
	}()
	return l
}

func (l *load) do(i int) result {
	c := l.cfg.Next(i)
	targets := l.cfg.Targets()
	r := result{call: c, start: time.Now()}
	if len(targets) == 0 {
		r.end, r.err = r.start, fmt.Errorf("no target ready")
		return r
	}
	r.target = targets[int(l.n.Add(1))%len(targets)]
	req, err := c.request(r.target)
	if err != nil {
		r.end, r.err = time.Now(), err
		return r
	}
	resp, err := l.client.Do(req)
	if err != nil {
		r.end, r.err = time.Now(), err
		return r
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	r.end, r.status, r.body, r.err = time.Now(), resp.StatusCode, string(b), err
	return r
}

func (l *load) record(r result) {
	l.mu.Lock()
	l.results = append(l.results, r)
	l.mu.Unlock()
}

// stop ends the load, waits for requests in flight, and returns every
// result ordered by start time.
func (l *load) stop() []result {
	l.cancel()
	<-l.done
	l.client.CloseIdleConnections()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := append([]result(nil), l.results...)
	sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
	return out
}

// count returns how many requests have finished for which match holds.
func (l *load) count(match func(r result) bool) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.results {
		if match(r) {
			n++
		}
	}
	return n
}

// loadBound bounds the waits of the fault tests for a state of the load (a
// number of answered requests, a readiness change): a hang detector, not a
// performance figure (those are logged), generous for a loaded 2-core
// machine with other suites beside.
const loadBound = 60 * time.Second

// waitResults waits until at least n finished requests match, failing the
// test after loadBound; it returns how long the wait took. Tests use it
// instead of sleeping "long enough" for traffic to flow.
func (l *load) waitResults(t *testing.T, what string, n int, match func(r result) bool) time.Duration {
	t.Helper()
	start := time.Now()
	if !waitFor(loadBound, func() bool { return l.count(match) >= n }) {
		t.Fatalf("%s: %d of %d requests after %v", what, l.count(match), n, loadBound)
	}
	return time.Since(start)
}

// okAfter matches the successful requests started after t0 (and, when
// target is not empty, sent to it).
func okAfter(t0 time.Time, target string) func(r result) bool {
	return func(r result) bool { return r.ok() && r.start.After(t0) && (target == "" || r.target == target) }
}

// summary are the figures a test reports.
type summary struct {
	sent, ok, failed int
	byStatus         map[string]int
	maxLatency       time.Duration
	firstFail        time.Time
	lastFail         time.Time
}

func summarize(rs []result) summary {
	s := summary{byStatus: map[string]int{}}
	for _, r := range rs {
		s.sent++
		if d := r.end.Sub(r.start); d > s.maxLatency {
			s.maxLatency = d
		}
		if r.ok() {
			s.ok++
			continue
		}
		s.failed++
		if s.firstFail.IsZero() {
			s.firstFail = r.start
		}
		if r.end.After(s.lastFail) {
			s.lastFail = r.end
		}
		if r.err != nil {
			s.byStatus["transport error"]++
		} else {
			s.byStatus[strconv.Itoa(r.status)]++
		}
	}
	return s
}

func (s summary) String() string {
	return fmt.Sprintf("sent %d, ok %d, failed %d %v, max latency %s", s.sent, s.ok, s.failed, s.byStatus, s.maxLatency.Round(time.Millisecond))
}

// recoveredAt returns the start of the first request after t0 from which
// every later request succeeded (zero time if the run never recovered).
func recoveredAt(rs []result, t0 time.Time) time.Time {
	var at time.Time
	for _, r := range rs {
		if r.start.Before(t0) {
			continue
		}
		if !r.ok() {
			at = time.Time{}
			continue
		}
		if at.IsZero() {
			at = r.start
		}
	}
	return at
}

// failures returns up to n failed results as text.
func failures(rs []result, n int) string {
	var b strings.Builder
	for _, r := range rs {
		if r.ok() {
			continue
		}
		if n == 0 {
			b.WriteString("  ...\n")
			break
		}
		n--
		b.WriteString("  " + r.String() + "\n")
	}
	return b.String()
}

// Requests of the standard mix: reads from catalog, quotes through pricing
// (which asks catalog), and, when orders is true, orders with a fresh
// idempotency key each.
func mix(orders bool) func(i int) call {
	return func(i int) call {
		n := 4
		if orders {
			n = 5
		}
		switch i % n {
		case 0:
			return call{kind: "cars", method: "GET", path: "/v1/cars"}
		case 1:
			return call{kind: "parts", method: "GET", path: "/v1/cars/civic/parts?page_size=3"}
		case 2:
			return call{kind: "quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"8","quantity":1},{"partId":"11","quantity":2}]}`}
		case 3:
			return call{kind: "compat", method: "POST", path: "/get-pecas", body: `{"modelo":"Fusca","ano":2014}`}
		default:
			return orderCall(randomKey(12))
		}
	}
}

// orderCall places the same small order (civic engine + two bumpers: R$
// 6,500 + 2 × 450 = 7,400.00, shipping 3 × 15 = 45.00) under key.
func orderCall(key string) call {
	return call{kind: "order", method: "POST", path: "/v1/orders", key: key,
		body: fmt.Sprintf(`{"idempotencyKey":%q,"items":[{"partId":"8","quantity":1},{"partId":"11","quantity":2}],`+
			`"expectedTotal":{"currencyCode":"BRL","minorUnits":"744500"}}`, key)}
}

const orderTotal = 744500

func randomKey(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return "fault-" + hex.EncodeToString(b)
}

// fixed returns a Targets function that always answers url.
func fixed(url string) func() []string { return func() []string { return []string{url} } }

// scrape reads a Prometheus text exposition and returns the sum of the
// samples of metric whose labels contain every one of labels ("k=\"v\"").
func scrape(t *testing.T, url, metric string, labels ...string) float64 {
	t.Helper()
	v, err := scrapeErr(url, metric, labels...)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return v
}

func scrapeErr(url, metric string, labels ...string) (float64, error) {
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %s", resp.Status)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || !strings.HasPrefix(line, metric) {
			continue
		}
		rest := line[len(metric):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer metric name
		}
		matched := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				matched = false
			}
		}
		if !matched {
			continue
		}
		f := strings.Fields(rest[strings.LastIndex(rest, "}")+1:])
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return 0, fmt.Errorf("parse %q: %w", line, err)
		}
		sum += v
		found = true
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	if !found {
		return 0, fmt.Errorf("no sample of %s%v", metric, labels)
	}
	return sum, nil
}

// jsonField decodes a JSON object and returns a top-level string field.
func jsonField(body, name string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	s, _ := m[name].(string)
	return s
}

// freePort returns a free loopback TCP port.
func freePort(t *testing.T) int {
	t.Helper()
	addr, err := stack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(addr)
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
