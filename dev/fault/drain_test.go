package fault

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbuild/carbuild/dev/internal/testdns"
	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations"
)

// shutdownDelay is the SHUTDOWN_DELAY of the drain tests: how long a
// service keeps serving, already not ready, before it drains — the time a
// load balancer (kubelet + endpoints) needs to stop sending it new work.
const shutdownDelay = time.Second

// TestDrainGateway sends SIGTERM to one of two gateways behind a load
// balancer that follows /readyz (as a Kubernetes Service does): /readyz
// turns 503 at once, the gateway keeps serving for SHUTDOWN_DELAY while the
// balancer moves new requests to the other one, drains what is in flight
// and exits 0. Not one request fails.
func TestDrainGateway(t *testing.T) {
	delay := "SHUTDOWN_DELAY=" + shutdownDelay.String()
	s := startStack(t, stackConfig(delay))
	bAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := startProc(t, "gateway", "GATEWAY_HTTP_ADDR="+bAddr, fmt.Sprintf("GATEWAY_METRICS_ADDR=127.0.0.1:%d", freePort(t)), "CATALOG_ADDR="+s.Addrs.Catalog, "PRICING_ADDR="+s.Addrs.Pricing, delay)
	a, bURL := s.GatewayURL, "http://"+bAddr
	if !waitFor(30*time.Second, func() bool { st, _ := httpGet(bURL + "/readyz"); return st == http.StatusOK }) {
		t.Fatalf("second gateway not ready")
	}

	// The balancer: polls /readyz of both every 50 ms, like a readiness probe
	// feeding a Service's endpoints (far faster than kubelet's, which is why
	// SHUTDOWN_DELAY must cover probe period × failure threshold there).
	lb := newBalancer([]string{a, bURL}, 50*time.Millisecond)
	defer lb.stop()
	if !waitFor(5*time.Second, func() bool { return len(lb.ready()) == 2 }) {
		t.Fatalf("balancer never saw both gateways ready")
	}

	l := startLoad(loadConfig{Rate: 200, Targets: lb.ready, Next: mix(true)})
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	time.Sleep(1500 * time.Millisecond)
	p := s.Process("gateway")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitErr, exitAt, exited := waitExit(p.Wait, 20*time.Second)
	time.Sleep(1500 * time.Millisecond) // the survivor alone, under the same load
	rs := l.stop()
	stopped = true
	lb.stop()

	sum := summarize(rs)
	servedAfter := 0
	for _, r := range rs {
		if r.target == a && r.start.After(termAt) && r.ok() {
			servedAfter++
		}
	}
	notReadyAt := lb.firstDown(a)
	t.Logf("drain gateway: %s", sum)
	t.Logf("drain gateway: SIGTERM → /readyz 503 seen after %s, exit after %s (exit error %v); %d requests answered by it after SIGTERM; %d by the other",
		since(termAt, notReadyAt), since(termAt, exitAt), exitErr, servedAfter, countTarget(rs, bURL))
	if !exited {
		t.Fatalf("gateway did not exit within 20 s of SIGTERM")
	}
	if exitErr != nil {
		t.Errorf("gateway exit: %v, want exit status 0", exitErr)
	}
	if notReadyAt.IsZero() || !notReadyAt.Before(exitAt) {
		t.Errorf("readiness did not turn off before the gateway stopped (503 at %v, exit at %v)", notReadyAt, exitAt)
	}
	if sum.failed != 0 {
		t.Errorf("%d requests failed during the drain, want 0:\n%s", sum.failed, failures(rs, 10))
	}
	if got := countTarget(rs, bURL); got == 0 {
		t.Errorf("the second gateway answered nothing: the load was not balanced")
	}
	checkOrders(t, connect(t, s.DatabaseURL), orderIDs(t, rs))
	_ = b
}

// TestDrainCatalog sends SIGTERM to one of two catalog instances that the
// gateway and pricing reach through one DNS name with both addresses (a
// headless Service): in-flight calls finish, readiness turns NOT_SERVING
// before the listener closes, the process exits 0 within SHUTDOWN_TIMEOUT,
// and the clients move to the other instance — not one request fails.
func TestDrainCatalog(t *testing.T) {
	drainBackend(t, "catalog", false)
}

// TestDrainPricing is TestDrainCatalog for pricing, with orders in the load:
// every order confirmed to a client is stored, none twice.
func TestDrainPricing(t *testing.T) {
	drainBackend(t, "pricing", true)
}

func drainBackend(t *testing.T, name string, orders bool) {
	delay := "SHUTDOWN_DELAY=" + shutdownDelay.String()
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, metricsAddr := addrs.Catalog, addrs.CatalogMetrics
	if name == "pricing" {
		grpcAddr, metricsAddr = addrs.Pricing, addrs.PricingMetrics
	}
	_, port, _ := net.SplitHostPort(grpcAddr)
	target := fmt.Sprintf("dns://%s/%s.fault.test:%s", testdns.Serve(t, net.IPv4(127, 0, 0, 1), net.IPv4(127, 0, 0, 2)), name, port)

	// The database is migrated before the second instance starts, so both
	// instances are up before their clients dial (no reconnect backoff to
	// wait for).
	db := newDatabase(t, adminURL(t))
	migrate(t, db)
	bMetrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := []string{"DATABASE_URL=" + db, delay}
	if name == "catalog" {
		env = append(env, "CATALOG_GRPC_ADDR=127.0.0.2:"+port, "CATALOG_METRICS_ADDR="+bMetrics)
	} else {
		env = append(env, "PRICING_GRPC_ADDR=127.0.0.2:"+port, "PRICING_METRICS_ADDR="+bMetrics, "CATALOG_ADDR="+addrs.Catalog)
	}
	startProc(t, name, env...)
	stackEnv := []string{"CATALOG_ADDR=" + target, delay}
	if name == "pricing" {
		stackEnv[0] = "PRICING_ADDR=" + target
	} else {
		// Pricing's parts cache would answer the quotes' part look-ups from
		// memory, leaving the catalog no calls to balance: off here.
		stackEnv = append(stackEnv, "PARTS_CACHE_TTL=0")
	}
	s := startStack(t, stack.Config{Addrs: addrs, DatabaseURL: db, Env: stackEnv})

	// Watch instance A's own health, on a connection to it alone.
	hw := watchHealth(t, grpcAddr, 20*time.Millisecond)
	defer hw.stop()
	gw := newBalancer([]string{s.GatewayURL}, 100*time.Millisecond)
	defer gw.stop()

	l := startLoad(loadConfig{Rate: 200, Targets: fixed(s.GatewayURL), Next: mix(orders)})
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	// Both instances must be taking traffic before one is stopped. Catalog
	// reads from the gateway are mostly answered by its cache, so the
	// catalog's share is counted on the calls pricing makes for quotes (its
	// parts cache off).
	method := `grpc_method="BatchGetParts"`
	if name == "pricing" {
		method = `grpc_method="CreateQuote"`
	}
	balanced := waitFor(15*time.Second, func() bool {
		va, errA := scrapeErr("http://"+metricsAddr+"/metrics", "grpc_server_handled_total", method)
		vb, errB := scrapeErr("http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)
		return errA == nil && errB == nil && va > 10 && vb > 10
	})
	if !balanced {
		t.Fatalf("the load does not reach both %s instances", name)
	}
	handledB0 := scrape(t, "http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)

	p := s.Process(name)
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitErr, exitAt, exited := waitExit(p.Wait, 30*time.Second)
	time.Sleep(1500 * time.Millisecond) // the survivor alone
	rs := l.stop()
	stopped = true
	hw.stop()
	gw.stop()
	handledB1 := scrape(t, "http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)

	sum := summarize(rs)
	notServing, unreachable := hw.firstNotServing(), hw.firstUnreachable()
	t.Logf("drain %s: %s", name, sum)
	t.Logf("drain %s: SIGTERM → NOT_SERVING after %s, listener closed after %s, exit after %s (exit error %v); the other instance handled %.0f calls meanwhile; gateway /readyz 503 seen %d times",
		name, since(termAt, notServing), since(termAt, unreachable), since(termAt, exitAt), exitErr, handledB1-handledB0, gw.downCount(s.GatewayURL))
	if !exited {
		t.Fatalf("%s did not exit within 30 s of SIGTERM", name)
	}
	if exitErr != nil {
		t.Errorf("%s exit: %v, want exit status 0", name, exitErr)
	}
	if exitAt.Sub(termAt) > shutdownDelay+15*time.Second {
		t.Errorf("%s took %s to exit, more than SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT", name, exitAt.Sub(termAt))
	}
	if notServing.IsZero() || (!unreachable.IsZero() && !notServing.Before(unreachable)) {
		t.Errorf("readiness did not turn NOT_SERVING before the listener closed (NOT_SERVING %v, unreachable %v)", notServing, unreachable)
	}
	if sum.failed != 0 {
		t.Errorf("%d requests failed during the drain, want 0:\n%s", sum.failed, failures(rs, 10))
	}
	if handledB1 <= handledB0 {
		t.Errorf("the surviving %s instance took no calls after the drain", name)
	}
	if orders {
		checkOrders(t, connect(t, db), orderIDs(t, rs))
	}
}

func migrate(t *testing.T, dsn string) {
	t.Helper()
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits up to timeout for wait to return.
func waitExit(wait func() error, timeout time.Duration) (err error, at time.Time, exited bool) {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return err, time.Now(), true
	case <-time.After(timeout):
		return nil, time.Time{}, false
	}
}

func since(t0, t1 time.Time) string {
	if t1.IsZero() {
		return "never"
	}
	return t1.Sub(t0).Round(time.Millisecond).String()
}

func countTarget(rs []result, target string) int {
	n := 0
	for _, r := range rs {
		if r.target == target {
			n++
		}
	}
	return n
}

// balancer keeps the list of HTTP targets whose /readyz answers 200.
type balancer struct {
	targets []string
	cur     atomic.Value // []string
	mu      sync.Mutex
	down    map[string]time.Time
	downs   map[string]int
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

func newBalancer(targets []string, every time.Duration) *balancer {
	ctx, cancel := context.WithCancel(context.Background())
	b := &balancer{targets: targets, down: map[string]time.Time{}, downs: map[string]int{}, cancel: cancel, done: make(chan struct{})}
	b.cur.Store([]string{})
	client := &http.Client{Timeout: time.Second}
	go func() {
		defer close(b.done)
		for {
			var ready []string
			for _, u := range targets {
				resp, err := client.Get(u + "/readyz")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				if ok {
					ready = append(ready, u)
					continue
				}
				b.mu.Lock()
				if b.down[u].IsZero() {
					b.down[u] = time.Now()
				}
				b.downs[u]++
				b.mu.Unlock()
			}
			b.cur.Store(ready)
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return b
}

func (b *balancer) ready() []string { return b.cur.Load().([]string) }

func (b *balancer) stop() {
	b.once.Do(func() { b.cancel(); <-b.done })
}

// firstDown is when target's /readyz first failed (zero if never).
func (b *balancer) firstDown(target string) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.down[target]
}

func (b *balancer) downCount(target string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.downs[target]
}

// healthWatch polls one gRPC server's readiness (service "") on a
// connection of its own.
type healthWatch struct {
	mu          sync.Mutex
	notServing  time.Time
	unreachable time.Time
	recovered   time.Time // first SERVING after NOT_SERVING or unreachable
	cancel      context.CancelFunc
	done        chan struct{}
	once        sync.Once
	conn        *grpc.ClientConn
}

func watchHealth(t *testing.T, addr string, every time.Duration) *healthWatch {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &healthWatch{cancel: cancel, done: make(chan struct{}), conn: conn}
	client := healthpb.NewHealthClient(conn)
	go func() {
		defer close(h.done)
		for {
			cctx, ccancel := context.WithTimeout(ctx, time.Second)
			resp, err := client.Check(cctx, &healthpb.HealthCheckRequest{})
			ccancel()
			if ctx.Err() != nil {
				return
			}
			now := time.Now()
			h.mu.Lock()
			switch {
			case err != nil && h.unreachable.IsZero():
				h.unreachable = now
			case err == nil && resp.GetStatus() != healthpb.HealthCheckResponse_SERVING && h.notServing.IsZero():
				h.notServing = now
			case err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING && h.recovered.IsZero() &&
				(!h.notServing.IsZero() || !h.unreachable.IsZero()):
				h.recovered = now
			}
			h.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(every):
			}
		}
	}()
	return h
}

func (h *healthWatch) stop() {
	h.once.Do(func() { h.cancel(); <-h.done; h.conn.Close() })
}

func (h *healthWatch) firstNotServing() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.notServing
}

func (h *healthWatch) recoveredAt() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recovered
}

func (h *healthWatch) firstUnreachable() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.unreachable
}

// TestDrainInFlight is the single-instance guarantee: with catalog slowed
// down so that quotes take about 2 s, SIGTERM to the only pricing (no
// SHUTDOWN_DELAY) lets the quotes in flight finish (200), new calls fail
// fast with 503 instead of hanging, and pricing exits 0 once the last call
// is answered.
func TestDrainInFlight(t *testing.T) {
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, addrs.Catalog)
	s := startStack(t, stack.Config{Addrs: addrs, Env: []string{"CATALOG_ADDR=" + px.addr(), "CATALOG_TIMEOUT=10s"}})
	hw := watchHealth(t, s.Addrs.Pricing, 20*time.Millisecond)
	defer hw.stop()
	px.setDelay(time.Second) // each way: a quote takes about 2 s

	const inFlight = 8
	quote := call{kind: "quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"8","quantity":1}]}`}
	l := startLoad(loadConfig{Rate: 100, Workers: inFlight, Targets: fixed(s.GatewayURL), Next: func(int) call { return quote }})
	time.Sleep(300 * time.Millisecond) // every worker is now waiting on a slow quote
	p := s.Process("pricing")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	// A new call while pricing drains: refused at once, not queued.
	newStart := time.Now()
	st, body := httpPost(s.GatewayURL+quote.path, quote.body)
	newTook := time.Since(newStart)
	exitErr, exitAt, exited := waitExit(p.Wait, 30*time.Second)
	rs := l.stop()
	hw.stop()

	var before []result
	for _, r := range rs {
		if r.start.Before(termAt) {
			before = append(before, r)
		}
	}
	sum := summarize(before)
	t.Logf("drain in flight: %d quotes in flight at SIGTERM: %s; pricing NOT_SERVING after %s, refusing connections after %s, exit after %s (exit error %v); a new quote during the drain: %d after %s",
		len(before), sum, since(termAt, hw.firstNotServing()), since(termAt, hw.firstUnreachable()), since(termAt, exitAt), exitErr, st, newTook.Round(time.Millisecond))
	if !exited {
		t.Fatalf("pricing did not exit within 30 s")
	}
	if exitErr != nil {
		t.Errorf("pricing exit: %v, want 0", exitErr)
	}
	if len(before) < inFlight/2 || sum.failed != 0 {
		t.Errorf("want every quote in flight at SIGTERM answered 200:\n%s", failures(before, 10))
	}
	if exitAt.Sub(termAt) < 1500*time.Millisecond {
		t.Errorf("pricing exited %s after SIGTERM: it did not wait for the calls in flight", exitAt.Sub(termAt))
	}
	if st != http.StatusServiceUnavailable || newTook > time.Second {
		t.Errorf("a new call during the drain: %d %s after %s, want a prompt 503", st, body, newTook)
	}
	if hw.firstNotServing().IsZero() && hw.firstUnreachable().IsZero() {
		t.Errorf("readiness never turned off")
	}
}

func httpPost(url, body string) (int, string) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(resp)
}

// TestDrainTimeout bounds the drain: a call that outlives SHUTDOWN_TIMEOUT is
// cut (the client gets a 503, not a hang) and pricing still exits 0 on time.
func TestDrainTimeout(t *testing.T) {
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, addrs.Catalog)
	s := startStack(t, stack.Config{Addrs: addrs, Env: []string{"CATALOG_ADDR=" + px.addr(), "CATALOG_TIMEOUT=30s", "SHUTDOWN_TIMEOUT=1s", "BACKEND_TIMEOUT=20s"}})
	px.setDelay(4 * time.Second) // a quote now takes about 8 s

	type answer struct {
		status int
		body   string
		took   time.Duration
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		st, body := httpPost(s.GatewayURL+"/v1/quotes", `{"items":[{"partId":"8","quantity":1}]}`)
		done <- answer{st, body, time.Since(start)}
	}()
	time.Sleep(500 * time.Millisecond)
	p := s.Process("pricing")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitErr, exitAt, exited := waitExit(p.Wait, 20*time.Second)
	var a answer
	select {
	case a = <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("the cut call never got an answer")
	}
	t.Logf("drain timeout: SHUTDOWN_TIMEOUT 1s, a call needing ~8 s: exit after %s (exit error %v); the call got %d after %s",
		since(termAt, exitAt), exitErr, a.status, a.took.Round(time.Millisecond))
	if !exited || exitErr != nil {
		t.Fatalf("pricing: exited %v, error %v; want exit 0", exited, exitErr)
	}
	if d := exitAt.Sub(termAt); d > 3*time.Second {
		t.Errorf("pricing took %s to exit with SHUTDOWN_TIMEOUT 1s", d)
	}
	if a.status != http.StatusServiceUnavailable || a.took > 5*time.Second {
		t.Errorf("the cut call: %d %s after %s, want a 503 when the drain ends", a.status, a.body, a.took)
	}
}
