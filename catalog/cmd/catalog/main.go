// Command catalog serves the car-parts catalog over gRPC
// (carbuild.catalog.v1.CatalogService, the operators' CatalogAdminService and
// the seed-compatible catalogo.CatalogoService), with grpc.health.v1, reflection and
// Prometheus metrics on a separate port. It reads its settings and runs package app.
package main

import (
	"context"
	"os"
	"time"

	"github.com/carbuild/carbuild/catalog/internal/app"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
)

func main() { boot.Main("catalog", run) }

// memoryLimit is the catalog's soft memory limit (GOMEMLIMIT overrides it),
// twice the other services': its cache keeps up to CATALOG_CACHE_MAX_PARTS
// parts (~9 MB at the default 50,000) and the list of cars on the heap, so
// under the others' 48 MiB it collected after every ~30 MB of garbage,
// which reading a million-part catalog makes in a fraction of a second.
// The bench's big catalog, interleaved runs: catalog CPU per get-pecas
// 162-173 → 145-152 µs, RSS 65 → 110 MiB (docs/performance.md).
const memoryLimit = 96 << 20

func run(ctx context.Context, args []string) error {
	config.SetMemoryLimit(os.LookupEnv, memoryLimit)
	var o app.Options
	var authSettings auth.Settings
	cfg := config.New("catalog", os.LookupEnv)
	cfg.String(&o.GRPCAddr, "grpc-addr", "CATALOG_GRPC_ADDR", "127.0.0.1:50051", "gRPC listen address")
	cfg.String(&o.MetricsAddr, "metrics-addr", "CATALOG_METRICS_ADDR", "127.0.0.1:9091", "metrics (/metrics) listen address")
	cfg.Secret(&o.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL (required)")
	cfg.Int(&o.DBMaxConns, "db-max-conns", "DB_MAX_CONNS", 8, "maximum database connections")
	cfg.Bool(&o.Cache, "cache", "CATALOG_CACHE", true, "keep the catalog in memory, emptied on every catalog_changed notification")
	cfg.Duration(&o.CacheTTL, "cache-ttl", "CATALOG_CACHE_TTL", 30*time.Second, "longest a cached entry is served (a bound even if a notification were lost)")
	cfg.Int(&o.CacheMaxParts, "cache-max-parts", "CATALOG_CACHE_MAX_PARTS", 50000, "most parts held in the cache")
	authSettings.Register(cfg)
	cfg.Common(&o.Common, "serve net/http/pprof on the metrics address")
	cfg.GRPCReflection(&o.Common)
	cfg.GRPCTLS(&o.Common, true)
	if err := cfg.Parse(args); err != nil {
		return err
	}
	o.Config, o.Auth = cfg, authSettings.Config()
	return app.Run(ctx, o)
}
