// Command pricing quotes baskets and places orders over gRPC
// (carbuild.pricing.v1.PricingService and the seed-compatible
// pricing.OrcamentoService). Prices come from the catalog service. It reads
// its settings and runs package app.
package main

import (
	"context"
	"os"
	"time"

	"github.com/carbuild/carbuild/pricing/internal/app"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
)

func main() { boot.Main("pricing", run) }

func run(ctx context.Context, args []string) error {
	var o app.Options
	var authSettings auth.Settings
	cfg := config.New("pricing", os.LookupEnv)
	cfg.String(&o.GRPCAddr, "grpc-addr", "PRICING_GRPC_ADDR", "127.0.0.1:50052", "gRPC listen address")
	cfg.String(&o.MetricsAddr, "metrics-addr", "PRICING_METRICS_ADDR", "127.0.0.1:9092", "metrics (/metrics) listen address")
	cfg.Secret(&o.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL (required)")
	cfg.Int(&o.DBMaxConns, "db-max-conns", "DB_MAX_CONNS", 16, "maximum database connections (orders wait on commits: 16 sustained 400 orders/s where 8 did not)")
	cfg.Int(&o.OrderBatchMax, "order-batch-max", "ORDER_BATCH_MAX", 64, "most orders inserted in one transaction (group commit: one WAL flush confirms them all); 1 commits each order alone")
	cfg.Int(&o.OrderBatchFlushers, "order-batch-flushers", "ORDER_BATCH_FLUSHERS", 4, "most order transactions in flight at once (database connections they keep busy; orders arriving meanwhile form the next batch)")
	cfg.String(&o.CatalogAddr, "catalog-addr", "CATALOG_ADDR", "127.0.0.1:50051", "catalog gRPC address (dns:///host:port balances over every address)")
	cfg.Duration(&o.CatalogTimeout, "catalog-timeout", "CATALOG_TIMEOUT", 2*time.Second, "deadline of each call to the catalog")
	cfg.Duration(&o.PartsCacheTTL, "parts-cache-ttl", "PARTS_CACHE_TTL", 30*time.Second, "longest a cached catalog part is used; changes empty the cache at once, this bounds a missed one; 0 turns the cache off")
	cfg.Int(&o.PartsCacheMax, "parts-cache-max", "PARTS_CACHE_MAX", 100_000, "most catalog parts held in the cache")
	authSettings.Register(cfg)
	cfg.Bool(&o.AnonymousOrders, "anonymous-orders", "ANONYMOUS_ORDERS", true, "accept orders without a bearer token (read back with their receipt token); false: only signed-in customers order")
	cfg.Common(&o.Common, "serve net/http/pprof on the metrics address")
	cfg.GRPCReflection(&o.Common)
	cfg.GRPCTLS(&o.Common, true)
	if err := cfg.Parse(args); err != nil {
		return err
	}
	o.Config, o.Auth = cfg, authSettings.Config()
	return app.Run(ctx, o)
}
