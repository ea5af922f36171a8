// Package respcache keeps the gateway's already-encoded answers to the
// catalog's read routes (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST
// /get-pecas) in memory, so that a repeated read costs neither the gRPC hop
// to the catalog nor the JSON encoding.
//
// The rules that keep it correct are the catalog's contract, in
// catalogclient.Cache: this package says only what it keeps (an answer as
// the middleware writes it, keyed by the request) and how much of the
// memory bound each answer takes.
package respcache

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/catalog/catalogclient"
)

// Options configure a Cache.
type Options struct {
	// MaxBytes bounds the keys and bodies held, plus entryOverhead bytes per
	// entry (which bounds the number of entries and so their bookkeeping).
	MaxBytes int64
	// TTL is how long an entry may be served after it was stored.
	TTL time.Duration
	// MaxKeyBody is the largest request body (POST /get-pecas) used as a key;
	// larger requests bypass the cache. Default 4 KiB.
	MaxKeyBody int
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// entryOverhead is what each entry counts beyond its key and body: with
// 8 MiB at most 16 Ki entries, whose bookkeeping (~200 bytes each: entry,
// map slot, header) stays a few MiB.
const entryOverhead = 512

// answer is a stored answer as the middleware writes it. It is never
// modified once stored: hits write its body as is.
type answer struct {
	contentType string
	revision    string      // X-Catalog-Revision as the catalog sent it
	metadata    http.Header // Grpc-Metadata-* headers, if any
	body        []byte
}

// Cache holds encoded answers by request (method, URI and, for POST, body);
// it follows the catalog's revision (Follow) like every cache of catalog
// data.
type Cache struct {
	*catalogclient.Cache[string, answer]
	maxKeyBody int
	maxBody    int // the largest body kept: one answer may not push out most of the others
}

// New creates an empty, not yet live cache and registers its metrics on reg.
func New(reg prometheus.Registerer, o Options) *Cache {
	if o.MaxKeyBody <= 0 {
		o.MaxKeyBody = 4 << 10
	}
	return &Cache{
		Cache: catalogclient.New(reg, catalogclient.Options[string, answer]{
			Name:  "carbuild_gateway_cache",
			Title: "the gateway's answer cache",
			Reads: "Cacheable catalog reads (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST /get-pecas)",
			Max:   o.MaxBytes,
			// cap: the recorder's buffer is kept as it grew.
			Size: func(key string, a answer) int64 { return int64(len(key) + cap(a.body) + entryOverhead) },
			TTL:  o.TTL,
			Now:  o.Now,
		}),
		maxKeyBody: o.MaxKeyBody,
		maxBody:    int(o.MaxBytes / 4),
	}
}
