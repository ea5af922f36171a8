package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
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

// waitCacheLive waits until the gateway's cache is in use (its watch of the
// catalog revision is up): cacheable reads are no longer bypasses.
func waitCacheLive(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		r := call(t, "GET", "/v1/cars", "")
		if x := r.header.Get("X-Cache"); r.status == 200 && (x == "hit" || x == "miss") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway cache is not live after 15 s: status %d, X-Cache %q", r.status, r.header.Get("X-Cache"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestGatewayCacheHit(t *testing.T) {
	waitCacheLive(t)
	reads := append([]cacheRead{{name: "v1 cars", method: "GET", path: "/v1/cars"}}, cacheReads...)
	for _, rd := range reads {
		t.Run(rd.name, func(t *testing.T) {
			first := call(t, rd.method, rd.path, rd.body)
			second := call(t, rd.method, rd.path, rd.body)
			for i, r := range []response{first, second} {
				if r.status != 200 {
					t.Fatalf("answer %d: %d %s", i+1, r.status, r.body)
				}
				if _, err := strconv.ParseInt(r.header.Get("X-Catalog-Revision"), 10, 64); err != nil {
					t.Errorf("answer %d: X-Catalog-Revision %q: %v", i+1, r.header.Get("X-Catalog-Revision"), err)
				}
			}
			if x := first.header.Get("X-Cache"); x != "miss" && x != "hit" {
				t.Errorf("first answer: X-Cache %q, want miss (or hit, if an earlier test asked the same)", x)
			}
			if x := second.header.Get("X-Cache"); x != "hit" {
				t.Errorf("second answer: X-Cache %q, want hit", x)
			}
			if string(first.body) != string(second.body) || first.header.Get("Content-Type") != second.header.Get("Content-Type") ||
				first.header.Get("X-Catalog-Revision") != second.header.Get("X-Catalog-Revision") {
				t.Errorf("hit differs from the first answer:\n%s %s %s\n%s %s %s",
					first.header.Get("Content-Type"), first.header.Get("X-Catalog-Revision"), first.body,
					second.header.Get("Content-Type"), second.header.Get("X-Catalog-Revision"), second.body)
			}
		})
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
	waitCacheLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	db, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) }) // after the price is put back
	var original int64
	if err := db.QueryRow(ctx, "SELECT price_minor FROM catalog.parts WHERE id = $1", capoID).Scan(&original); err != nil {
		t.Fatal(err)
	}
	setPrice := func(p int64) time.Time {
		t.Helper()
		if _, err := db.Exec(ctx, "UPDATE catalog.parts SET price_minor = $1 WHERE id = $2", p, capoID); err != nil {
			t.Fatal(err)
		}
		return time.Now() // committed (autocommit): the change is the catalog's to see
	}
	t.Cleanup(func() {
		committed := setPrice(original)
		for _, rd := range cacheReads {
			awaitPrice(t, rd, original, committed, 5*time.Second)
		}
	})

	// Warm the cache with the current price, so the change has something to
	// invalidate.
	for _, rd := range cacheReads {
		for range 2 {
			r := call(t, rd.method, rd.path, rd.body)
			if got := rd.price(t, r.body); got != original {
				t.Fatalf("%s: price %d before the change, want %d", rd.name, got, original)
			}
		}
	}

	const rounds = 5
	const bound = 2 * time.Second // fail beyond it; the figures are logged
	lat := map[string][]time.Duration{}
	for i := range rounds {
		price := original + int64(i+1)*111
		committed := setPrice(price)
		for _, rd := range cacheReads {
			lat[rd.name] = append(lat[rd.name], awaitPrice(t, rd, price, committed, bound))
		}
		// No stale answer once the new price was seen, and the cache refills.
		hits := 0
		for range 50 {
			for _, rd := range cacheReads {
				r := call(t, rd.method, rd.path, rd.body)
				if got := rd.price(t, r.body); got != price {
					t.Fatalf("round %d %s: price %d after %d was served (X-Cache %s, X-Catalog-Revision %s)",
						i, rd.name, got, price, r.header.Get("X-Cache"), r.header.Get("X-Catalog-Revision"))
				}
				if r.header.Get("X-Cache") == "hit" {
					hits++
				}
			}
		}
		if hits == 0 {
			t.Errorf("round %d: no hit in 100 reads after the change: the cache does not refill", i)
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
// committed that was; it fails the test after bound.
func awaitPrice(t *testing.T, rd cacheRead, price int64, committed time.Time, bound time.Duration) time.Duration {
	t.Helper()
	var last response
	for time.Since(committed) < bound {
		last = call(t, rd.method, rd.path, rd.body)
		if last.status == 200 && rd.price(t, last.body) == price {
			return time.Since(committed)
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%s: price %d not served %v after the commit; last answer: %s", rd.name, price, bound, describe(last))
	return 0
}

func describe(r response) string {
	return fmt.Sprintf("%d X-Cache %s X-Catalog-Revision %s %s", r.status, r.header.Get("X-Cache"), r.header.Get("X-Catalog-Revision"), r.body)
}
