package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The cache tests wait for states, never for "soon enough": a cache that
// must be in use is waited for until its live gauge says so, and "a repeated
// read is a hit" is asserted only for two reads between which no catalog
// revision watch event came (a stream that ends, a catalog that recycles its
// connection, a new revision: each one legitimately makes the next read a
// miss or a bypass). The caches expose both on their metrics page
// (<prefix>_live and <prefix>_watch_events_total).

// stateBound bounds every wait for a state in the cache tests. It detects a
// hang, not slowness — the measured figures are logged — so it is generous
// for a loaded 2-core machine, and it stays below the caches' 30 s TTL,
// which would otherwise hide an invalidation that never came.
const stateBound = 10 * time.Second

// cacheState reads the watch state of a cache in front of the catalog from
// its service's metrics page.
type cacheState struct {
	metrics string // base URL of the metrics page
	prefix  string // carbuild_gateway_cache or carbuild_pricing_parts_cache
}

// gatewayAt is a gateway: its public URL and its private operations URL
// (where /metrics is).
type gatewayAt struct{ url, metrics string }

// stackGateway is the gateway of the package's stack.
func stackGateway() gatewayAt {
	return gatewayAt{url: sys.GatewayURL, metrics: "http://" + sys.Addrs.GatewayMetrics}
}

func (g gatewayAt) cache() cacheState {
	return cacheState{metrics: g.metrics, prefix: "carbuild_gateway_cache"}
}

func pricingCacheAt(metricsBase string) cacheState {
	return cacheState{metrics: metricsBase, prefix: "carbuild_pricing_parts_cache"}
}

func (c cacheState) live(t *testing.T) bool {
	return scrape(t, c.metrics, c.prefix+"_live ") == 1
}

func (c cacheState) events(t *testing.T) float64 {
	return scrape(t, c.metrics, c.prefix+"_watch_events_total ")
}

func (c cacheState) invalidations(t *testing.T) float64 {
	return scrape(t, c.metrics, c.prefix+"_invalidations_total ")
}

// waitLive waits until the cache serves and stores (its revision watch is
// up and the catalog live) and returns how long the wait took.
func (c cacheState) waitLive(t *testing.T) time.Duration {
	t.Helper()
	start := time.Now()
	for !c.live(t) {
		if time.Since(start) > stateBound {
			t.Fatalf("%s is not live %v after the wait began", c.prefix, stateBound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// waitInvalidated waits until the cache's invalidation counter exceeds
// before: a committed change reached it and emptied it. It returns how long
// the wait took.
func (c cacheState) waitInvalidated(t *testing.T, before float64) time.Duration {
	t.Helper()
	start := time.Now()
	for c.invalidations(t) <= before {
		if time.Since(start) > stateBound {
			t.Fatalf("%s: the change emptied no cache within %v", c.prefix, stateBound)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(start)
}

// quiet runs reads (two identical reads whose results the caller keeps)
// until a run happens while the cache is live and no watch event comes
// between its start and end; the caller then asserts on that run's results.
// It returns how many runs a watch event (or a cache not live) spoiled.
func (c cacheState) quiet(t *testing.T, reads func()) (spoiled int) {
	t.Helper()
	deadline := time.Now().Add(stateBound)
	for ; ; spoiled++ {
		c.waitLive(t)
		// Events first, then live: if the count is the same after the
		// reads, the cache was live from the live check to the end.
		before := c.events(t)
		live := c.live(t)
		reads()
		if live && c.events(t) == before {
			if spoiled > 0 {
				t.Logf("%s: %d attempts had a watch event between the reads", c.prefix, spoiled)
			}
			return spoiled
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: a catalog revision watch event came during every one of %d attempts in %v", c.prefix, spoiled+1, stateBound)
		}
	}
}

// scrapeValue is scrape for a goroutine: it returns an error instead of
// failing the test.
func scrapeValue(base, prefix string, with ...string) (float64, error) {
	page, err := metricsPage(base)
	if err != nil {
		return 0, err
	}
	return samples(page, prefix, with...)
}

// metricsPage fetches the metrics exposition at base.
func metricsPage(base string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s/metrics: %s", base, resp.Status)
	}
	return string(b), nil
}

// samples sums the samples of an exposition whose line starts with prefix
// and contains every one of with.
func samples(page, prefix string, with ...string) (float64, error) {
	sum := 0.0
	for _, line := range strings.Split(page, "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		ok := true
		for _, w := range with {
			ok = ok && strings.Contains(line, w)
		}
		if f := strings.Fields(line); ok && len(f) == 2 {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				return 0, fmt.Errorf("%q: %w", line, err)
			}
			sum += v
		}
	}
	return sum, nil
}
