package e2e

import (
	"context"
	"slices"
	"testing"
	"time"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// Pricing keeps the catalog's parts in memory, kept valid by the catalog's
// WatchRevision stream like the gateway's answer cache. These tests quote
// through pricing's gRPC API: a repeated basket is priced without asking the
// catalog, and a price changed in PostgreSQL is quoted within a bound, never
// followed by the old price again.
//
// They change part 6 (fusca, Capô), as the gateway cache tests do, and put
// it back; they are not parallel either.

// cacheBasket is the basket quoted: part 6 (whose price changes) and part 5.
var cacheBasket = []*pricingv1.LineItem{{PartId: capoID, Quantity: 1}, {PartId: "5", Quantity: 2}}

// pricingCacheCount returns the parts cache look-ups with result of the
// pricing instance whose metrics are at metrics.
func pricingCacheCount(t *testing.T, metrics, result string) float64 {
	return scrape(t, metrics, "carbuild_pricing_parts_cache_requests_total{", `result="`+result+`"`)
}

// catalogBatchGets counts the BatchGetParts calls the catalog answered.
func catalogBatchGets(t *testing.T) float64 {
	return scrape(t, "http://"+sys.Addrs.CatalogMetrics, "grpc_server_handled_total{", `grpc_method="BatchGetParts"`)
}

// quotedPrice quotes cacheBasket and returns part 6's unit price in centavos.
func quotedPrice(ctx context.Context, t *testing.T, api pricingv1.PricingServiceClient) int64 {
	t.Helper()
	q, err := api.CreateQuote(ctx, &pricingv1.CreateQuoteRequest{Items: cacheBasket})
	if err != nil {
		t.Fatalf("CreateQuote: %v", err)
	}
	for _, l := range q.GetLines() {
		if l.GetPartId() == capoID {
			return l.GetUnitPrice().GetMinorUnits()
		}
	}
	t.Fatalf("part %s not in the quote %v", capoID, q)
	return 0
}

// waitPricingCacheLive waits until pricing's parts cache is in use (its
// watch of the catalog revision is up): a quote is no longer a bypass.
func waitPricingCacheLive(ctx context.Context, t *testing.T, api pricingv1.PricingServiceClient, metrics string) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		before := pricingCacheCount(t, metrics, "bypass")
		quotedPrice(ctx, t, api)
		if pricingCacheCount(t, metrics, "bypass") == before {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pricing's parts cache is not live after 15 s: quotes are still bypasses")
		}
	}
}

func TestPricingCacheHit(t *testing.T) {
	ctx := ctxT(t)
	api := pricingv1.NewPricingServiceClient(dial(t, sys.Addrs.Pricing))
	metrics := "http://" + sys.Addrs.PricingMetrics
	waitPricingCacheLive(ctx, t, api, metrics)

	first := quotedPrice(ctx, t, api) // a miss, or a hit if the wait stored it
	hits, calls := pricingCacheCount(t, metrics, "hit"), catalogBatchGets(t)
	second := quotedPrice(ctx, t, api)
	if got := pricingCacheCount(t, metrics, "hit") - hits; got != 1 {
		t.Errorf("hits of the second quote: got %v, want 1", got)
	}
	// No other test runs now: the catalog's count is this quote's alone.
	if got := catalogBatchGets(t) - calls; got != 0 {
		t.Errorf("BatchGetParts calls of the second quote: got %v, want 0", got)
	}
	if first != second {
		t.Errorf("second quote: part %s at %d, the first at %d", capoID, second, first)
	}
}

// TestPricingCachePriceChange updates part 6's price in PostgreSQL and
// measures how long until a quote prices it; once one has, the old price
// must never come back, and the cache must fill again.
func TestPricingCachePriceChange(t *testing.T) {
	quoteRounds(t, sys.Addrs.Pricing, "http://"+sys.Addrs.PricingMetrics, 5, nil)
}

// quoteRounds changes part 6's price rounds times (and puts it back at
// cleanup), each time quoting through the pricing instance at addr (metrics
// at metrics) until the new price is quoted, then checking that the old one
// never returns and that the cache refills. between, if set, runs before
// each round. It logs the latencies from the commit.
func quoteRounds(t *testing.T, addr, metrics string, rounds int, between func(round int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	api := pricingv1.NewPricingServiceClient(dial(t, addr))
	waitPricingCacheLive(ctx, t, api, metrics)
	original, setPrice := capoPrice(ctx, t)
	const bound = 2 * time.Second // fail beyond it; the figures are logged
	await := func(price int64, committed time.Time) time.Duration {
		t.Helper()
		last := int64(-1)
		for time.Since(committed) < bound {
			if last = quotedPrice(ctx, t, api); last == price {
				return time.Since(committed)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("price %d not quoted %v after the commit; last quoted %d", price, bound, last)
		return 0
	}
	t.Cleanup(func() { await(original, setPrice(original)) })

	// Warm the cache with the current price, so the change has something to
	// invalidate.
	for range 2 {
		if got := quotedPrice(ctx, t, api); got != original {
			t.Fatalf("price %d before the change, want %d", got, original)
		}
	}
	var lat []time.Duration
	for i := range rounds {
		if between != nil {
			between(i)
		}
		price := original + int64(i+1)*137
		invalidations := scrape(t, metrics, "carbuild_pricing_parts_cache_invalidations_total")
		lat = append(lat, await(price, setPrice(price)))
		// With a stopped catalog in between, the watch may be down over the
		// change (quotes bypass the cache) and come back at the new revision
		// after the new price is quoted.
		if between == nil && scrape(t, metrics, "carbuild_pricing_parts_cache_invalidations_total") == invalidations {
			t.Errorf("round %d: the change emptied no cache", i)
		}
		hits := pricingCacheCount(t, metrics, "hit")
		for range 50 {
			if got := quotedPrice(ctx, t, api); got != price {
				t.Fatalf("round %d: price %d quoted after %d was", i, got, price)
			}
		}
		if pricingCacheCount(t, metrics, "hit") == hits {
			t.Errorf("round %d: no hit in 50 quotes after the change: the cache does not refill", i)
		}
	}
	slices.Sort(lat)
	t.Logf("new price quoted by pricing %v after the commit (median of %d rounds %v, max %v)", lat, rounds, lat[len(lat)/2], lat[len(lat)-1])
}

// TestPricingCacheTwoCatalogs runs two more catalog instances and a second
// pricing that reaches them through one DNS name (a headless Service): its
// revision watch follows one instance while its part look-ups go to both.
// Price changes must still be quoted within the bound and never be followed
// by the old price, also after the instance holding the watch stream is
// stopped (SIGTERM) between two rounds.
func TestPricingCacheTwoCatalogs(t *testing.T) {
	catalogs := startTwoCatalogs(t)
	addr, metrics := freeAddr(t), freeAddr(t)
	startExtra(t, "pricing", "DATABASE_URL="+sys.DatabaseURL, "PRICING_GRPC_ADDR="+addr, "PRICING_METRICS_ADDR="+metrics,
		"CATALOG_ADDR="+catalogs.target)
	waitListening(t, addr)

	holder := -1
	quoteRounds(t, addr, "http://"+metrics, 6, func(round int) {
		if round == 3 {
			holder = catalogs.stopWatchHolder(t, round, "pricing", func(t *testing.T, metrics string) float64 {
				return scrape(t, metrics, "grpc_server_handled_total{", `grpc_method="BatchGetParts"`)
			})
		}
	})
	catalogs.checkStreamMoved(t, holder)
}
