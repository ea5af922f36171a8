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

// startPricingCache makes pricing's parts cache (metrics at metrics) start
// its revision watch — it starts at the first look-up — and waits until it
// is live.
func startPricingCache(ctx context.Context, t *testing.T, api pricingv1.PricingServiceClient, metrics string) cacheState {
	t.Helper()
	cs := pricingCacheAt(metrics)
	quotedPrice(ctx, t, api)
	cs.waitLive(t)
	return cs
}

// repeatQuoteHits asserts that of two identical quotes with no watch event
// between them, the second is priced from pricing's memory: one hit, and
// (with calls, the catalog's BatchGetParts count) no call to the catalog.
// Both quote price.
func repeatQuoteHits(ctx context.Context, t *testing.T, api pricingv1.PricingServiceClient, cs cacheState, price int64, calls func() float64) {
	t.Helper()
	var hits, batchGets float64
	var first, second int64
	cs.quiet(t, func() {
		first = quotedPrice(ctx, t, api) // a miss, or a hit if the part is held
		h, c := pricingCacheCount(t, cs.metrics, "hit"), 0.0
		if calls != nil {
			c = calls()
		}
		second = quotedPrice(ctx, t, api)
		hits = pricingCacheCount(t, cs.metrics, "hit") - h
		if calls != nil {
			batchGets = calls() - c
		}
	})
	if hits != 1 {
		t.Errorf("hits of the second of two quotes with no watch event between them: got %v, want 1", hits)
	}
	if batchGets != 0 {
		t.Errorf("BatchGetParts calls of the second quote: got %v, want 0", batchGets)
	}
	if first != price || second != price {
		t.Errorf("quotes priced part %s at %d and %d, want %d", capoID, first, second, price)
	}
}

func TestPricingCacheHit(t *testing.T) {
	// Beyond every bounded wait inside (stateBound each), so that those,
	// not the context, say what did not happen.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	api := pricingv1.NewPricingServiceClient(dial(t, sys.Addrs.Pricing))
	cs := startPricingCache(ctx, t, api, "http://"+sys.Addrs.PricingMetrics)
	price := quotedPrice(ctx, t, api)
	// No other test runs now: the catalog's count is these quotes' alone.
	repeatQuoteHits(ctx, t, api, cs, price, func() float64 { return catalogBatchGets(t) })
}

// TestPricingCachePriceChange updates part 6's price in PostgreSQL and
// measures how long until a quote prices it; once one has, the old price
// must never come back, and the cache must fill again.
func TestPricingCachePriceChange(t *testing.T) {
	quoteRounds(t, sys.Addrs.Pricing, "http://"+sys.Addrs.PricingMetrics, 5, nil)
}

// quoteRounds changes part 6's price rounds times (and puts it back at
// cleanup), each time quoting through the pricing instance at addr (metrics
// at metrics) until the new price is quoted, then checking that the change
// emptied the cache, that the old price never returns and that the cache
// refills. between, if set, runs before each round; when it returns a
// function, the round calls it once the new price was quoted (it waits for
// whatever between started). It logs the latencies from the commit.
func quoteRounds(t *testing.T, addr, metrics string, rounds int, between func(round int) func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	api := pricingv1.NewPricingServiceClient(dial(t, addr))
	cs := startPricingCache(ctx, t, api, metrics)
	original, setPrice := capoPrice(ctx, t)
	await := func(price int64, committed time.Time) time.Duration {
		t.Helper()
		last := int64(-1)
		for time.Since(committed) < stateBound {
			if last = quotedPrice(ctx, t, api); last == price {
				return time.Since(committed)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("price %d not quoted %v after the commit; last quoted %d", price, stateBound, last)
		return 0
	}
	t.Cleanup(func() { await(original, setPrice(original)) })

	// Warm the cache with the current price, so that the change has
	// something to empty: the part is held once a repeated quote is a hit.
	repeatQuoteHits(ctx, t, api, cs, original, nil)
	var lat []time.Duration
	for i := range rounds {
		var after func()
		if between != nil {
			after = between(i)
		}
		price := original + int64(i+1)*137
		invalidations := cs.invalidations(t)
		lat = append(lat, await(price, setPrice(price)))
		if after != nil {
			after()
		}
		// The change reaches the cache and empties it — also when the
		// watch moved to another catalog instance meanwhile: the stream
		// comes back at the new revision.
		cs.waitInvalidated(t, invalidations)
		for range 50 {
			if got := quotedPrice(ctx, t, api); got != price {
				t.Fatalf("round %d: price %d quoted after %d was", i, got, price)
			}
		}
		// The cache refills: a repeated quote is a hit, at the new price.
		repeatQuoteHits(ctx, t, api, cs, price, nil)
	}
	slices.Sort(lat)
	t.Logf("new price quoted by pricing %v after the commit (median of %d rounds %v, max %v)", lat, rounds, lat[len(lat)/2], lat[len(lat)-1])
}

// TestPricingCacheTwoCatalogs runs two more catalog instances and a second
// pricing that reaches them through one DNS name (a headless Service): its
// revision watch follows one instance while its part look-ups go to both.
// Price changes must still be quoted within the bound and never be followed
// by the old price, also after the instance holding the watch stream is
// stopped (SIGTERM) between two rounds; the cache must then be live again
// once the stream has moved to the other instance (the time is logged).
func TestPricingCacheTwoCatalogs(t *testing.T) {
	catalogs := startTwoCatalogs(t)
	addr, metrics := freeAddr(t), freeAddr(t)
	startExtra(t, "pricing", "DATABASE_URL="+sys.DatabaseURL, "PRICING_GRPC_ADDR="+addr, "PRICING_METRICS_ADDR="+metrics,
		"CATALOG_ADDR="+catalogs.target)
	waitListening(t, addr)

	holder := -1
	quoteRounds(t, addr, "http://"+metrics, 6, func(round int) func() {
		if round != 3 {
			return nil
		}
		var moved func()
		holder, moved = catalogs.stopWatchHolder(t, round, "pricing", pricingCacheAt("http://"+metrics), func(t *testing.T, metrics string) float64 {
			return scrape(t, metrics, "grpc_server_handled_total{", `grpc_method="BatchGetParts"`)
		})
		return moved
	})
	catalogs.checkStreamMoved(t, holder)
}
