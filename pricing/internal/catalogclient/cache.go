package catalogclient

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	catalogcache "github.com/carbuild/carbuild/catalog/catalogclient"
	"github.com/carbuild/carbuild/pricing/internal/quote"
)

// Cache holds catalog parts by id under the catalog's contract (see
// catalogcache.Cache): it follows the catalog's revision (Follow) like every
// cache of catalog data.
type Cache = catalogcache.Cache[int64, quote.Part]

// CacheOptions configure a Cache.
type CacheOptions struct {
	// MaxParts bounds the parts held; storing more evicts the oldest.
	MaxParts int
	// TTL is how long a stored part may be served. It only bounds what a
	// missed revision event could cost: every event empties the cache.
	TTL time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// NewCache creates an empty, not yet live cache and registers its metrics on
// reg, every result present from the start.
func NewCache(reg prometheus.Registerer, o CacheOptions) *Cache {
	return catalogcache.New(reg, catalogcache.Options[int64, quote.Part]{
		Name:  "carbuild_pricing_parts_cache",
		Title: "pricing's parts cache",
		Reads: "Part look-ups of quotes and orders (a hit needs every part of the basket)",
		Max:   int64(o.MaxParts),
		TTL:   o.TTL,
		Now:   o.Now,
	})
}
