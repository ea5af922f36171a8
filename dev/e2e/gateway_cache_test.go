package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/dev/internal/testdns"

	"github.com/carbuild/carbuild/dev/stack"
)

// The gateway keeps encoded answers of the catalog reads in memory, kept
// valid by the catalog's WatchRevision stream. These tests drive it over HTTP:
// a repeated read is a hit with the same answer, and a price changed in
// PostgreSQL is served through the gateway within a bound, never followed by
// the old price again.
//
// They change part 6 (fusca, Capô) and put it back; they are not parallel,
// so the parallel tests, which check seed prices, run before or after them.

// capoID is the part whose price the tests change: no other test reads it.
const capoID = "6"

// cacheRead is one of the cacheable reads and where part 6's price is in its
// answer, in centavos.
type cacheRead struct {
	name, method, path, body string
	price                    func(t *testing.T, body []byte) int64
}

var cacheReads = []cacheRead{
	{"v1 parts", "GET", "/v1/cars/fusca/parts?page_size=10", "", func(t *testing.T, b []byte) int64 {
		var v struct {
			Parts []struct {
				ID    string `json:"id"`
				Price struct {
					MinorUnits string `json:"minorUnits"`
				} `json:"price"`
			} `json:"parts"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("parts: %v: %s", err, b)
		}
		for _, p := range v.Parts {
			if p.ID == capoID {
				n, err := strconv.ParseInt(p.Price.MinorUnits, 10, 64)
				if err != nil {
					t.Fatalf("price %q: %v", p.Price.MinorUnits, err)
				}
				return n
			}
		}
		t.Fatalf("part %s not in %s", capoID, b)
		return 0
	}},
	{"compat get-pecas", "POST", "/get-pecas", `{"modelo":"fusca","ano":2014}`, func(t *testing.T, b []byte) int64 {
		var v struct {
			Pecas []struct {
				ID    string  `json:"id"`
				Valor float64 `json:"valor"`
			} `json:"pecas"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("pecas: %v: %s", err, b)
		}
		for _, p := range v.Pecas {
			if p.ID == capoID {
				return int64(p.Valor*100 + 0.5)
			}
		}
		t.Fatalf("peca %s not in %s", capoID, b)
		return 0
	}},
}

// repeatReadHits asserts that of two identical reads of rd through the
// gateway at base with no watch event between them, the second is a hit with
// the first one's answer; both must answer 200 (and, when price is not
// negative, part 6 at price).
func repeatReadHits(t *testing.T, gw gatewayAt, rd cacheRead, price int64) {
	t.Helper()
	base := gw.url
	var first, second response
	gw.cache().quiet(t, func() {
		first = callAt(t, base, rd.method, rd.path, rd.body)
		second = callAt(t, base, rd.method, rd.path, rd.body)
	})
	for i, r := range []response{first, second} {
		if r.status != 200 {
			t.Fatalf("%s: answer %d: %s", rd.name, i+1, describe(r))
		}
		if _, err := strconv.ParseInt(r.header.Get("X-Catalog-Revision"), 10, 64); err != nil {
			t.Errorf("%s: answer %d: X-Catalog-Revision %q: %v", rd.name, i+1, r.header.Get("X-Catalog-Revision"), err)
		}
		if price >= 0 {
			if got := rd.price(t, r.body); got != price {
				t.Errorf("%s: answer %d: part %s at %d, want %d", rd.name, i+1, capoID, got, price)
			}
		}
	}
	if x := first.header.Get("X-Cache"); x != "miss" && x != "hit" {
		t.Errorf("%s: first answer: X-Cache %q, want miss (or hit, if an earlier read stored it)", rd.name, x)
	}
	if x := second.header.Get("X-Cache"); x != "hit" {
		t.Errorf("%s: second of two reads with no watch event between them: X-Cache %q, want hit", rd.name, x)
	}
	if string(first.body) != string(second.body) || first.header.Get("Content-Type") != second.header.Get("Content-Type") ||
		first.header.Get("X-Catalog-Revision") != second.header.Get("X-Catalog-Revision") {
		t.Errorf("%s: hit differs from the first answer:\n%s %s %s\n%s %s %s", rd.name,
			first.header.Get("Content-Type"), first.header.Get("X-Catalog-Revision"), first.body,
			second.header.Get("Content-Type"), second.header.Get("X-Catalog-Revision"), second.body)
	}
}

func TestGatewayCacheHit(t *testing.T) {
	stackGateway().cache().waitLive(t)
	reads := append([]cacheRead{{name: "v1 cars", method: "GET", path: "/v1/cars"}}, cacheReads...)
	for _, rd := range reads {
		t.Run(rd.name, func(t *testing.T) { repeatReadHits(t, stackGateway(), rd, -1) })
	}
	// Other routes are not cached.
	if r := call(t, "GET", "/v1/parts:batchGet?ids=1", ""); r.header.Get("X-Cache") != "" {
		t.Errorf("batchGet: X-Cache %q, want none", r.header.Get("X-Cache"))
	}
}

// TestGatewayCachePriceChange updates part 6's price in PostgreSQL and
// measures how long until each cacheable read serves the new price through
// the gateway; once it has, the old price must never come back.
func TestGatewayCachePriceChange(t *testing.T) {
	priceRounds(t, stackGateway(), 5, nil)
}

// capoPrice returns the current price of part capoID and a function that
// sets it in PostgreSQL (autocommit) and returns when it was committed: from
// then on the change is the catalog's to see. Its connection closes at
// cleanup, after the cleanups registered later (which put the price back).
func capoPrice(ctx context.Context, t *testing.T) (original int64, setPrice func(int64) time.Time) {
	t.Helper()
	db, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	if err := db.QueryRow(ctx, "SELECT price_minor FROM catalog.parts WHERE id = $1", capoID).Scan(&original); err != nil {
		t.Fatal(err)
	}
	return original, func(p int64) time.Time {
		t.Helper()
		if _, err := db.Exec(ctx, "UPDATE catalog.parts SET price_minor = $1 WHERE id = $2", p, capoID); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
}

// priceRounds changes part 6's price rounds times (and puts it back at
// cleanup), each time polling every cacheable read through the gateway at
// base until it serves the new price, then checking that the change emptied
// the cache, that the old price never returns and that the cache fills
// again. between, if set, runs before each round; when it returns a
// function, the round calls it once the new price was served (it waits for
// whatever between started). It logs the latencies from the commit.
func priceRounds(t *testing.T, gw gatewayAt, rounds int, between func(round int) func()) {
	t.Helper()
	base := gw.url
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cs := gw.cache()
	cs.waitLive(t)
	original, setPrice := capoPrice(ctx, t)
	t.Cleanup(func() {
		committed := setPrice(original)
		for _, rd := range cacheReads {
			awaitPrice(t, base, rd, original, committed)
		}
	})

	// Warm the cache with the current price, so that the change has
	// something to empty: an answer is held once a repeated read is a hit.
	for _, rd := range cacheReads {
		repeatReadHits(t, gw, rd, original)
	}

	lat := map[string][]time.Duration{}
	for i := range rounds {
		var after func()
		if between != nil {
			after = between(i)
		}
		price := original + int64(i+1)*111
		invalidations := cs.invalidations(t)
		committed := setPrice(price)
		// The reads are polled one after the other: the second one's figure
		// includes the first one's wait.
		for _, rd := range cacheReads {
			lat[rd.name] = append(lat[rd.name], awaitPrice(t, base, rd, price, committed))
		}
		if after != nil {
			after()
		}
		// The change reaches the cache and empties it — also when the
		// watch moved to another catalog instance meanwhile: the stream
		// comes back at the new revision.
		cs.waitInvalidated(t, invalidations)
		// No stale answer once the new price was seen, and the cache refills.
		for range 50 {
			for _, rd := range cacheReads {
				r := callAt(t, base, rd.method, rd.path, rd.body)
				if got := rd.price(t, r.body); got != price {
					t.Fatalf("round %d %s: price %d after %d was served (%s)", i, rd.name, got, price, describe(r))
				}
			}
		}
		for _, rd := range cacheReads {
			repeatReadHits(t, gw, rd, price)
		}
	}
	for _, rd := range cacheReads {
		d := lat[rd.name]
		slices.Sort(d)
		t.Logf("%s: new price served through the gateway %v after the commit (median of %d rounds %v, max %v)",
			rd.name, d, rounds, d[len(d)/2], d[len(d)-1])
	}
}

// awaitPrice polls rd until it answers price and returns how long after
// committed that was; it fails the test after stateBound.
func awaitPrice(t *testing.T, base string, rd cacheRead, price int64, committed time.Time) time.Duration {
	t.Helper()
	var last response
	for time.Since(committed) < stateBound {
		last = callAt(t, base, rd.method, rd.path, rd.body)
		if last.status == 200 && rd.price(t, last.body) == price {
			return time.Since(committed)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: price %d not served %v after the commit; last answer: %s", rd.name, price, stateBound, describe(last))
	return 0
}

func describe(r response) string {
	return fmt.Sprintf("%d X-Cache %s X-Catalog-Revision %s %s", r.status, r.header.Get("X-Cache"), r.header.Get("X-Catalog-Revision"), r.body)
}

// callAt is call against the gateway at base.
func callAt(t *testing.T, base, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// TestGatewayCacheTwoCatalogs runs two more catalog instances (127.0.0.2
// and 127.0.0.3, on the stack's catalog port) and a second gateway that
// reaches them through one DNS name, the way a headless Service balances
// pods: the gateway's revision watch follows one instance while its reads go
// to both, which see a change at slightly different moments. Price changes
// must still show within the bound and never be followed by the old price,
// also after the instance holding the watch stream is stopped (SIGTERM)
// between two rounds; the cache must then be live again once the stream has
// moved to the other instance (the time is logged).
func TestGatewayCacheTwoCatalogs(t *testing.T) {
	catalogs := startTwoCatalogs(t)
	gwAddr, gwMetrics := freeAddr(t), freeAddr(t)
	startExtra(t, "gateway", "GATEWAY_HTTP_ADDR="+gwAddr, "GATEWAY_METRICS_ADDR="+gwMetrics, "PRICING_ADDR="+sys.Addrs.Pricing,
		"CATALOG_ADDR="+catalogs.target)
	gw := gatewayAt{url: "http://" + gwAddr, metrics: "http://" + gwMetrics}
	waitListening(t, gwAddr)

	holder := -1
	priceRounds(t, gw, 6, func(round int) func() {
		if round != 3 {
			return nil
		}
		// Both instances answered reads; then the one holding the watch
		// stream stops, and the gateway reopens it on the other.
		var moved func()
		holder, moved = catalogs.stopWatchHolder(t, round, "the gateway", gw.cache(), handledReads)
		return moved
	})
	catalogs.checkStreamMoved(t, holder)
}

// twoCatalogs are two more catalog instances (127.0.0.2 and 127.0.0.3, on
// the stack's catalog port) behind one DNS name, the way a headless Service
// balances pods; target is the gRPC target naming both.
type twoCatalogs struct {
	instances [2]extraCatalog
	target    string
}

type extraCatalog struct {
	ip      string
	cmd     *exec.Cmd
	metrics string
}

func startTwoCatalogs(t *testing.T) twoCatalogs {
	t.Helper()
	_, port, err := net.SplitHostPort(sys.Addrs.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	var cs twoCatalogs
	for i, ip := range []string{"127.0.0.2", "127.0.0.3"} {
		in := extraCatalog{ip: ip, metrics: freeAddr(t)}
		in.cmd = startExtra(t, "catalog", "DATABASE_URL="+sys.DatabaseURL,
			"CATALOG_GRPC_ADDR="+ip+":"+port, "CATALOG_METRICS_ADDR="+in.metrics)
		cs.instances[i] = in
	}
	for _, in := range cs.instances {
		waitListening(t, in.ip+":"+port)
	}
	dns := testdns.Serve(t, net.ParseIP(cs.instances[0].ip), net.ParseIP(cs.instances[1].ip))
	cs.target = fmt.Sprintf("dns://%s/catalog.e2e.test:%s", dns, port)
	return cs
}

// stopWatchHolder checks that both instances served the client's reads
// (served counts them from an instance's metrics), then sends SIGTERM to the
// instance holding the client's WatchRevision stream. It returns that
// instance's index and a function that waits until the stream has moved:
// the other instance holds it and the client's cache (cs) is live again. The
// function fails the test after stateBound and logs the time from SIGTERM,
// the figure behind the recovery bound in docs/reliability.md.
func (cs twoCatalogs) stopWatchHolder(t *testing.T, round int, client string, cache cacheState, served func(t *testing.T, metrics string) float64) (int, func()) {
	t.Helper()
	holder := -1
	for i, in := range cs.instances {
		if n := served(t, "http://"+in.metrics); n == 0 {
			t.Fatalf("catalog %s answered no reads: %s does not balance over both", in.ip, client)
		}
		if openStreams(t, "http://"+in.metrics) > 0 {
			holder = i
		}
	}
	if holder < 0 {
		t.Fatalf("no catalog instance holds %s's WatchRevision stream", client)
	}
	other := "http://" + cs.instances[1-holder].metrics
	t.Logf("round %d: SIGTERM to catalog %s, which holds the watch stream", round, cs.instances[holder].ip)
	// Watch for the move from now on, while the round goes on: the price
	// change races the move, as a change during a rollout would.
	type moved struct {
		after time.Duration
		err   error
	}
	done := make(chan moved, 1)
	sigterm := time.Now()
	if err := cs.instances[holder].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			streams, err := streamsOpen(other)
			var live float64
			if err == nil {
				live, err = scrapeValue(cache.metrics, cache.prefix+"_live ")
			}
			if err == nil && streams > 0 && live == 1 {
				done <- moved{after: time.Since(sigterm)}
				return
			}
			if time.Since(sigterm) > stateBound {
				done <- moved{err: fmt.Errorf("%s's watch stream not moved and its cache not live %v after SIGTERM (streams on the other instance %v, live %v, last error %v)",
					client, stateBound, streams, live, err)}
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return holder, func() {
		t.Helper()
		m := <-done
		if m.err != nil {
			t.Fatal(m.err)
		}
		t.Logf("round %d: %s's watch stream moved to catalog %s and its cache is live again %v after SIGTERM to the holder",
			round, client, cs.instances[1-holder].ip, m.after)
	}
}

// checkStreamMoved checks that the other instance now holds the stream.
func (cs twoCatalogs) checkStreamMoved(t *testing.T, holder int) {
	t.Helper()
	if holder < 0 {
		t.Fatal("no catalog instance was stopped")
	}
	other := cs.instances[1-holder]
	if n := openStreams(t, "http://"+other.metrics); n != 1 {
		t.Errorf("catalog %s holds %v watch streams after the other stopped, want 1", other.ip, n)
	}
}

// startExtra starts one more instance of a stack binary with env added; it
// is stopped (SIGTERM, then SIGKILL) at cleanup and its output logged if the
// test failed.
func startExtra(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(sys.Process(name).Cmd.Path)
	cmd.Env = append(append(os.Environ(), "LOG_FORMAT=text"), env...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("---- extra %s logs ----\n%s", name, out.String())
		}
	})
	return cmd
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	addr, err := stack.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s: %v", addr, err)
		}
	}
}

// scrape returns the samples of a /metrics page whose line starts with
// prefix and contains every one of with, by their value.
func scrape(t *testing.T, base, prefix string, with ...string) float64 {
	t.Helper()
	v, err := scrapeValue(base, prefix, with...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// handledReads counts ListParts and GetPecas calls a catalog answered.
func handledReads(t *testing.T, metrics string) float64 {
	return scrape(t, metrics, "grpc_server_handled_total{", `grpc_method="ListParts"`) +
		scrape(t, metrics, "grpc_server_handled_total{", `grpc_method="GetPecas"`)
}

// openStreams counts the WatchRevision streams a catalog has open.
func openStreams(t *testing.T, metrics string) float64 {
	t.Helper()
	n, err := streamsOpen(metrics)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// streamsOpen is openStreams for a goroutine. Both counters come from one
// scrape, so a stream that starts and ends meanwhile is not half counted.
func streamsOpen(metrics string) (float64, error) {
	page, err := metricsPage(metrics)
	if err != nil {
		return 0, err
	}
	started, err := samples(page, "grpc_server_started_total{", `grpc_method="WatchRevision"`)
	if err != nil {
		return 0, err
	}
	handled, err := samples(page, "grpc_server_handled_total{", `grpc_method="WatchRevision"`)
	return started - handled, err
}
