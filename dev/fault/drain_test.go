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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/dev/internal/testdns"
	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations"
)

// shutdownDelay is the SHUTDOWN_DELAY of the drain tests: how long a
// service keeps serving, already not ready, before it drains — the time a
// load balancer (kubelet + endpoints) needs to stop sending it new work.
const shutdownDelay = time.Second

// gatewayShutdownDelay is the gateway's: the test's balancer must see
// /readyz 503 (it polls every 50 ms) and stop sending before the gateway
// closes its listener. A few seconds leave that margin even on a loaded
// machine; gRPC clients of catalog and pricing need none (they move on the
// GOAWAY of the drain itself).
const gatewayShutdownDelay = 3 * time.Second

// TestDrainGateway sends SIGTERM to one of two gateways behind a load
// balancer that follows /readyz (as a Kubernetes Service does): /readyz
// turns 503 at once, the gateway keeps serving for SHUTDOWN_DELAY while the
// balancer moves new requests to the other one, drains what is in flight
// and exits 0. Not one request fails.
func TestDrainGateway(t *testing.T) {
	delay := "SHUTDOWN_DELAY=" + gatewayShutdownDelay.String()
	s := startStack(t, stackConfig(delay))
	bAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	b := startProc(t, "gateway", "GATEWAY_HTTP_ADDR="+bAddr, fmt.Sprintf("GATEWAY_METRICS_ADDR=127.0.0.1:%d", freePort(t)), "CATALOG_ADDR="+s.Addrs.Catalog, "PRICING_ADDR="+s.Addrs.Pricing, delay)
	a, bURL := s.GatewayURL, "http://"+bAddr
	if !waitFor(loadBound, func() bool { st, _ := httpGet(bURL + "/readyz"); return st == http.StatusOK }) {
		t.Fatalf("second gateway not ready after %v", loadBound)
	}

	// The balancer: polls /readyz of both every 50 ms, like a readiness probe
	// feeding a Service's endpoints (far faster than kubelet's, which is why
	// SHUTDOWN_DELAY must cover probe period × failure threshold there).
	lb := newBalancer([]string{a, bURL}, 50*time.Millisecond)
	defer lb.stop()
	if !waitFor(loadBound, func() bool { return len(lb.ready()) == 2 }) {
		t.Fatalf("balancer never saw both gateways ready")
	}

	l := startLoad(loadConfig{Rate: 200, Targets: lb.ready, Next: mix(true)})
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	// Both gateways take traffic before one is stopped.
	l.waitResults(t, "gateway A answers", 20, okAfter(time.Time{}, a))
	l.waitResults(t, "gateway B answers", 20, okAfter(time.Time{}, bURL))
	steady := time.Now()
	p := s.Process("gateway")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitAt, exited, exitErr := waitExit(p.Wait, gatewayShutdownDelay+loadBound)
	if exited {
		// The survivor alone, under the same load.
		l.waitResults(t, "the other gateway answers after the exit", 100, okAfter(exitAt, bURL))
	}
	rs := l.stop()
	stopped = true
	lb.stop()

	warm, rs := splitWarmUp(t, rs, steady)
	sum := summarize(rs)
	servedAfter := 0
	for _, r := range rs {
		if r.target == a && r.start.After(termAt) && r.ok() {
			servedAfter++
		}
	}
	notReadyAt := lb.firstDown(a, termAt)
	t.Logf("drain gateway: %s (warm-up before: %s)", sum, summarize(warm))
	t.Logf("drain gateway: SIGTERM → /readyz 503 seen after %s, exit after %s (exit error %v; SHUTDOWN_DELAY %s); %d requests answered by it after SIGTERM; %d by the other",
		since(termAt, notReadyAt), since(termAt, exitAt), exitErr, gatewayShutdownDelay, servedAfter, countTarget(rs, bURL))
	if !exited {
		t.Fatalf("gateway did not exit within SHUTDOWN_DELAY + %v of SIGTERM", loadBound)
	}
	if exitErr != nil {
		t.Errorf("gateway exit: %v, want exit status 0", exitErr)
	}
	if notReadyAt.IsZero() || !notReadyAt.Before(exitAt) {
		t.Errorf("readiness did not turn off before the gateway stopped (503 at %v, exit at %v)", notReadyAt, exitAt)
	}
	if sum.failed != 0 {
		t.Errorf("%d requests failed during the drain, want 0:\n%s", sum.failed, failures(rs, 10))
		if d := notReadyAt.Sub(termAt); d >= gatewayShutdownDelay {
			t.Errorf("the test's balancer saw /readyz 503 only %s after SIGTERM, not within SHUTDOWN_DELAY %s: the machine was too loaded for the set-up", d, gatewayShutdownDelay)
		}
	}
	// The gateway drains with the same lifecycle as catalog and pricing: it
	// logs whether its drain ended before SHUTDOWN_TIMEOUT.
	checkDrainLog(t, "gateway", s.Logs())
	checkOrders(t, connect(t, s.DatabaseURL), orderIDs(t, append(warm, rs...)))
	_ = b
}

// splitWarmUp splits the results at steady, when both instances were seen
// taking traffic. The drain's property (not one failure) is about the
// requests from then on. Before, connections are still being dialled: on a
// loaded machine a first quote can outlast pricing's 2 s CATALOG_TIMEOUT (a
// 504, seen once in 20 runs at load average 35); any other warm-up failure
// still fails the test.
func splitWarmUp(t *testing.T, rs []result, steady time.Time) (warm, run []result) {
	t.Helper()
	for _, r := range rs {
		if r.start.Before(steady) {
			warm = append(warm, r)
			if !r.ok() && !r.timedOut() {
				t.Errorf("warm-up request failed: %s", r)
			}
			continue
		}
		run = append(run, r)
	}
	return warm, run
}

// checkDrainLog checks that the named server of the stack drained in time: it logged that its in-flight calls were drained,
// and never that the drain timed out (its SHUTDOWN_TIMEOUT, 15 s). This is
// what "exits within the drain timeout" means, without comparing a time to
// a guess.
func checkDrainLog(t *testing.T, name, logs string) {
	t.Helper()
	var drained, timedOut bool
	for _, line := range strings.Split(logs, "\n") {
		if !strings.HasPrefix(line, "["+name+"]") {
			continue
		}
		drained = drained || strings.Contains(line, "drained in-flight calls")
		timedOut = timedOut || strings.Contains(line, "drain timed out")
	}
	if !drained || timedOut {
		t.Errorf("%s: drained %v, drain timed out %v; want a drain that finished before SHUTDOWN_TIMEOUT", name, drained, timedOut)
	}
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
	balanced := waitFor(loadBound, func() bool {
		va, errA := scrapeErr("http://"+metricsAddr+"/metrics", "grpc_server_handled_total", method)
		vb, errB := scrapeErr("http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)
		return errA == nil && errB == nil && va > 10 && vb > 10
	})
	if !balanced {
		t.Fatalf("the load does not reach both %s instances", name)
	}
	// The watcher may have dialled instance A before it listened (the stack
	// is ready as soon as B answers): its connection then waits out gRPC's
	// reconnect backoff, and each poll meanwhile repeats the old "connection
	// refused", which would pass for the listener closing. Its own
	// connection must be up and see SERVING first.
	if !waitFor(loadBound, hw.servingNow) {
		t.Fatalf("the health watcher never saw %s SERVING", name)
	}
	handledB0 := scrape(t, "http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)
	steady := time.Now()

	p := s.Process(name)
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitAt, exited, exitErr := waitExit(p.Wait, shutdownDelay+loadBound)
	if exited {
		// The survivor alone, under the same load.
		l.waitResults(t, "requests answered after the exit", 100, okAfter(exitAt, ""))
	}
	rs := l.stop()
	stopped = true
	hw.stop()
	gw.stop()
	handledB1 := scrape(t, "http://"+bMetrics+"/metrics", "grpc_server_handled_total", method)

	warm, rs := splitWarmUp(t, rs, steady)
	sum := summarize(rs)
	notServing, unreachable := hw.firstNotServing(termAt), hw.firstUnreachable(termAt)
	t.Logf("drain %s: %s (warm-up before: %s)", name, sum, summarize(warm))
	t.Logf("drain %s: SIGTERM → NOT_SERVING after %s, listener closed after %s, exit after %s (exit error %v); the other instance handled %.0f calls meanwhile; gateway /readyz 503 seen %d times",
		name, since(termAt, notServing), since(termAt, unreachable), since(termAt, exitAt), exitErr, handledB1-handledB0, gw.downCount(s.GatewayURL))
	if !exited {
		t.Fatalf("%s did not exit within SHUTDOWN_DELAY + %v of SIGTERM", name, loadBound)
	}
	if exitErr != nil {
		t.Errorf("%s exit: %v, want exit status 0", name, exitErr)
	}
	checkDrainLog(t, name, s.Logs())
	if notServing.IsZero() || (!unreachable.IsZero() && !notServing.Before(unreachable)) {
		t.Errorf("readiness did not turn NOT_SERVING before the listener closed (NOT_SERVING %v, unreachable %v)", notServing, unreachable)
		hw.mu.Lock()
		for _, s := range hw.seen {
			if !s.at.Before(termAt.Add(-100 * time.Millisecond)) {
				t.Logf("health %s: %v %v", since(termAt, s.at), s.state, s.err)
			}
		}
		hw.mu.Unlock()
	}
	if sum.failed != 0 {
		t.Errorf("%d requests failed during the drain, want 0:\n%s", sum.failed, failures(rs, 10))
	}
	if handledB1 <= handledB0 {
		t.Errorf("the surviving %s instance took no calls after the drain", name)
	}
	if orders {
		checkOrders(t, connect(t, db), orderIDs(t, append(warm, rs...)))
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
func waitExit(wait func() error, timeout time.Duration) (at time.Time, exited bool, err error) {
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		return time.Now(), true, err
	case <-time.After(timeout):
		return time.Time{}, false, nil
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
	downs   map[string][]time.Time // when each target's /readyz failed
	cancel  context.CancelFunc
	done    chan struct{}
	once    sync.Once
}

func newBalancer(targets []string, every time.Duration) *balancer {
	ctx, cancel := context.WithCancel(context.Background())
	b := &balancer{targets: targets, downs: map[string][]time.Time{}, cancel: cancel, done: make(chan struct{})}
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
				b.downs[u] = append(b.downs[u], time.Now())
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

// firstDown is when target's /readyz first failed after t0 (zero if
// never): a poll that failed earlier (a loaded machine, a readiness
// flicker) is not the event under test.
func (b *balancer) firstDown(target string, t0 time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, at := range b.downs[target] {
		if !at.Before(t0) {
			return at
		}
	}
	return time.Time{}
}

// downCount is how many polls of target's /readyz failed.
func (b *balancer) downCount(target string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.downs[target])
}

// healthState is what one readiness poll saw.
type healthState int

const (
	noAnswer    healthState = iota - 1 // no answer in time (a loaded machine): says nothing
	serving                            // answered SERVING
	notServing                         // answered NOT_SERVING (or anything but SERVING)
	unreachable                        // UNAVAILABLE: nothing answers (listener closed, process gone)
)

// healthWatch polls one gRPC server's readiness (service "") on a
// connection of its own and keeps every answer with its time, so a test asks
// what happened after its own event, not since the watch began.
type healthWatch struct {
	mu     sync.Mutex
	seen   []healthSeen
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	conn   *grpc.ClientConn
}

type healthSeen struct {
	at    time.Time
	state healthState
	err   error
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
			st := serving
			switch {
			case status.Code(err) == codes.Unavailable:
				st = unreachable
			case err != nil:
				st = noAnswer
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				st = notServing
			}
			if st != noAnswer {
				h.mu.Lock()
				h.seen = append(h.seen, healthSeen{time.Now(), st, err})
				h.mu.Unlock()
			}
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

// first returns when a poll after t0 first saw state (zero if none did).
func (h *healthWatch) first(state healthState, t0 time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.seen {
		if s.state == state && !s.at.Before(t0) {
			return s.at
		}
	}
	return time.Time{}
}

// servingNow reports whether the latest poll saw SERVING.
func (h *healthWatch) servingNow() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.seen) > 0 && h.seen[len(h.seen)-1].state == serving
}

func (h *healthWatch) firstNotServing(t0 time.Time) time.Time  { return h.first(notServing, t0) }
func (h *healthWatch) firstUnreachable(t0 time.Time) time.Time { return h.first(unreachable, t0) }

// recoveredAt is when a poll after t0 first saw SERVING again after one
// (also after t0) saw it not serving (zero if none did).
func (h *healthWatch) recoveredAt(t0 time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	down := false
	for _, s := range h.seen {
		if s.at.Before(t0) {
			continue
		}
		if s.state != serving {
			down = true
		} else if down {
			return s.at
		}
	}
	return time.Time{}
}

// TestDrainInFlight is the single-instance guarantee: with catalog slowed
// down so that quotes take about 2 s, SIGTERM to the only pricing (no
// SHUTDOWN_DELAY) lets the quotes in flight finish (200), new calls fail
// fast with 503 instead of waiting for them, and pricing exits 0 once the
// last call is answered.
func TestDrainInFlight(t *testing.T) {
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, addrs.Catalog)
	s := startStack(t, stack.Config{Addrs: addrs, Env: []string{"CATALOG_ADDR=" + px.addr(), "CATALOG_TIMEOUT=10s"}})
	hw := watchHealth(t, s.Addrs.Pricing, 20*time.Millisecond)
	defer hw.stop()
	const inFlight = 8
	quote := call{kind: "quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"8","quantity":1}]}`}
	// One quote first, at full speed, so that pricing's connection to the
	// catalog is up: set up through the slowed proxy, its HTTP/2 handshake
	// would add a round trip (2 s) to the first quotes, ~4 s in all, close
	// to the gateway's 5 s deadline (with one more round trip, client-side
	// health checking tried once, two of them got 504).
	if st, body := httpPost(s.GatewayURL+quote.path, quote.body); st != http.StatusOK {
		t.Fatalf("warm-up quote: %d %s", st, body)
	}
	px.setDelay(time.Second) // each way: a quote takes about 2 s

	l := startLoad(loadConfig{Rate: 100, Workers: inFlight, Targets: fixed(s.GatewayURL), Next: func(int) call { return quote }})
	// Every worker is waiting on a slow quote that pricing is handling.
	waitInFlight(t, "http://"+s.Addrs.PricingMetrics, "CreateQuote", inFlight)
	p := s.Process("pricing")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Pricing drains: its listener is closed and its connections have
	// been told to go away (GOAWAY goes to every connection at once, so a
	// connection of our own refusing to reconnect shows it).
	if !waitFor(loadBound, func() bool { return !hw.firstUnreachable(termAt).IsZero() }) {
		t.Fatalf("pricing still reachable %v after SIGTERM", loadBound)
	}
	// A new call while pricing drains: refused at once, not queued behind
	// the calls in flight (those keep pricing up for ~2 s more).
	newStart := time.Now()
	st, body := httpPost(s.GatewayURL+quote.path, quote.body)
	newEnd := time.Now()
	exitAt, exited, exitErr := waitExit(p.Wait, loadBound)
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
		len(before), sum, since(termAt, hw.firstNotServing(termAt)), since(termAt, hw.firstUnreachable(termAt)), since(termAt, exitAt), exitErr, st, newEnd.Sub(newStart).Round(time.Millisecond))
	if !exited {
		t.Fatalf("pricing did not exit within %v", loadBound)
	}
	if exitErr != nil {
		t.Errorf("pricing exit: %v, want 0", exitErr)
	}
	// Every quote in flight at SIGTERM answered 200: pricing waited for
	// them (had it not, they would have failed).
	if len(before) < inFlight || sum.failed != 0 {
		t.Errorf("want the %d quotes in flight at SIGTERM answered 200, got %s:\n%s", inFlight, sum, failures(before, 10))
	}
	checkDrainLog(t, "pricing", s.Logs())
	if st != http.StatusServiceUnavailable || !newEnd.Before(exitAt) {
		t.Errorf("a new call during the drain: %d %s after %s (pricing exited %s after it), want a 503 before the calls in flight finished",
			st, body, newEnd.Sub(newStart), exitAt.Sub(newEnd))
	}
	if hw.firstNotServing(termAt).IsZero() && hw.firstUnreachable(termAt).IsZero() {
		t.Errorf("readiness never turned off")
	}
}

// waitInFlight waits until the gRPC service with metrics at metrics is
// handling at least n calls of method (started, not yet handled).
func waitInFlight(t *testing.T, metrics, method string, n int) {
	t.Helper()
	var got float64
	ok := waitFor(loadBound, func() bool {
		started, err1 := scrapeErr(metrics+"/metrics", "grpc_server_started_total", `grpc_method="`+method+`"`)
		handled, err2 := scrapeErr(metrics+"/metrics", "grpc_server_handled_total", `grpc_method="`+method+`"`)
		got = started - handled
		return err1 == nil && err2 == nil && got >= float64(n)
	})
	if !ok {
		t.Fatalf("%s calls in flight: %v after %v, want %d", method, got, loadBound, n)
	}
}

func httpPost(url, body string) (int, string) {
	c := &http.Client{Timeout: 90 * time.Second}
	resp, err := c.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	return resp.StatusCode, readAll(resp)
}

// TestDrainTimeout bounds the drain: a call that outlives SHUTDOWN_TIMEOUT is
// cut (the client gets a 503, not a hang, long before the call could have
// been answered) and pricing still exits 0 — through the timeout, as its log
// says.
func TestDrainTimeout(t *testing.T) {
	// Each way: a quote needs 2 × slowDelay; the cut comes after
	// SHUTDOWN_TIMEOUT (1 s), far sooner.
	const slowDelay = 10 * time.Second
	addrs, err := stack.FreeAddrs()
	if err != nil {
		t.Fatal(err)
	}
	px := startProxy(t, addrs.Catalog)
	s := startStack(t, stack.Config{Addrs: addrs, Env: []string{"CATALOG_ADDR=" + px.addr(), "CATALOG_TIMEOUT=60s", "SHUTDOWN_TIMEOUT=1s", "BACKEND_TIMEOUT=60s"}})
	px.setDelay(slowDelay)

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
	waitInFlight(t, "http://"+s.Addrs.PricingMetrics, "CreateQuote", 1)
	p := s.Process("pricing")
	termAt := time.Now()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exitAt, exited, exitErr := waitExit(p.Wait, loadBound)
	var a answer
	select {
	case a = <-done:
	case <-time.After(loadBound):
		t.Fatalf("the cut call never got an answer")
	}
	t.Logf("drain timeout: SHUTDOWN_TIMEOUT 1s, a call needing ~%v: exit after %s (exit error %v); the call got %d after %s",
		2*slowDelay, since(termAt, exitAt), exitErr, a.status, a.took.Round(time.Millisecond))
	if !exited || exitErr != nil {
		t.Fatalf("pricing: exited %v, error %v; want exit 0", exited, exitErr)
	}
	if !strings.Contains(s.Logs(), "drain timed out") {
		t.Errorf("pricing did not log that its drain timed out: the call was not cut by SHUTDOWN_TIMEOUT")
	}
	if d := exitAt.Sub(start); d >= 2*slowDelay {
		t.Errorf("pricing exited %s after the call began, not before the call could end (%v): it waited instead of cutting", d, 2*slowDelay)
	}
	if a.status != http.StatusServiceUnavailable || a.took >= 2*slowDelay {
		t.Errorf("the cut call: %d %s after %s, want a 503 when the drain ends, before the call could end (%v)", a.status, a.body, a.took, 2*slowDelay)
	}
}
