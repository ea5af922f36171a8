// Command pricing quotes baskets and places orders over gRPC
// (carbuild.pricing.v1.PricingService and the seed-compatible
// pricing.OrcamentoService). Prices come from the catalog service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/carbuild/carbuild/pricing/internal/catalogclient"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/server"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/buildinfo"
	"github.com/carbuild/carbuild/shared/config"
	"github.com/carbuild/carbuild/shared/database"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/grpcclient"
	"github.com/carbuild/carbuild/shared/grpcserver"
	"github.com/carbuild/carbuild/shared/grpctls"
	"github.com/carbuild/carbuild/shared/logging"
	"github.com/carbuild/carbuild/shared/metrics"
	"github.com/carbuild/carbuild/shared/tracing"
)

type settings struct {
	common                                          config.Common
	grpcAddr, metricsAddr, databaseURL, catalogAddr string
	catalogTimeout, partsCacheTTL                   time.Duration
	dbMaxConns, partsCacheMax                       int
	auth                                            auth.Settings
	anonymousOrders                                 bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "pricing:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var s settings
	config.TuneGC(os.LookupEnv)
	cfg := config.New("pricing", os.LookupEnv)
	cfg.String(&s.grpcAddr, "grpc-addr", "PRICING_GRPC_ADDR", "127.0.0.1:50052", "gRPC listen address")
	cfg.String(&s.metricsAddr, "metrics-addr", "PRICING_METRICS_ADDR", "127.0.0.1:9092", "metrics (/metrics) listen address")
	cfg.Secret(&s.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL (required)")
	cfg.Int(&s.dbMaxConns, "db-max-conns", "DB_MAX_CONNS", 16, "maximum database connections (orders wait on commits: 16 sustained 400 orders/s where 8 did not)")
	cfg.String(&s.catalogAddr, "catalog-addr", "CATALOG_ADDR", "127.0.0.1:50051", "catalog gRPC address (dns:///host:port balances over every address)")
	cfg.Duration(&s.catalogTimeout, "catalog-timeout", "CATALOG_TIMEOUT", 2*time.Second, "deadline of each call to the catalog")
	cfg.Duration(&s.partsCacheTTL, "parts-cache-ttl", "PARTS_CACHE_TTL", 30*time.Second, "longest a cached catalog part is used; changes empty the cache at once, this bounds a missed one; 0 turns the cache off")
	cfg.Int(&s.partsCacheMax, "parts-cache-max", "PARTS_CACHE_MAX", 100_000, "most catalog parts held in the cache")
	s.auth.Register(cfg)
	cfg.Bool(&s.anonymousOrders, "anonymous-orders", "ANONYMOUS_ORDERS", true, "accept orders without a bearer token (read back with their receipt token); false: only signed-in customers order")
	cfg.Common(&s.common, "serve net/http/pprof on the metrics address")
	cfg.GRPCReflection(&s.common)
	cfg.GRPCTLS(&s.common, true)
	if err := cfg.Parse(args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "pricing", s.common.LogLevel, s.common.LogFormat)
	if err != nil {
		return err
	}
	if s.databaseURL == "" {
		return errors.New("DATABASE_URL (or -database-url) is required")
	}
	log.Info("starting", "version", buildinfo.Version, "commit", buildinfo.Commit, "config", cfg)
	// The same token the gateway verified is verified again here, so a caller
	// that reaches this service directly gets no more than through the
	// gateway.
	verifier, err := auth.NewVerifier(s.auth.Config())
	if err != nil {
		return err
	}
	if !verifier.Enabled() {
		log.Warn("AUTH_ISSUER is not set: every caller is anonymous and bearer tokens are refused")
	}

	tr, err := tracing.Setup(ctx, "pricing", log)
	if err != nil {
		return err
	}
	defer func() {
		if err := tr.Shutdown(); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}()

	reg := metrics.NewRegistry("pricing")
	pool, err := database.Open(ctx, s.databaseURL, database.Options{MaxConns: int32(s.dbMaxConns)}, log, reg)
	if err != nil {
		return err
	}
	defer pool.Close()

	tlsDial, err := grpctls.DialOptions(s.common.GRPCTLS)
	if err != nil {
		return err
	}
	conn, err := grpcclient.Dial(s.catalogAddr, grpcclient.NewMetrics(reg), grpcclient.Options{DefaultTimeout: s.catalogTimeout, Extra: append(tr.DialOptions(), tlsDial...)})
	if err != nil {
		return err
	}
	defer conn.Close()

	// The cache exists (and its metrics) even when off: it then never goes
	// live and every look-up is a bypass.
	catalogAPI := catalogv1.NewCatalogServiceClient(conn)
	cache := catalogclient.NewCache(reg, catalogclient.CacheOptions{MaxParts: s.partsCacheMax, TTL: s.partsCacheTTL})
	catalog := catalogclient.New(catalogAPI, s.catalogTimeout, cache)
	if s.partsCacheTTL > 0 && s.partsCacheMax > 0 {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		defer stopWatch()
		catalog.OnFirstUse(func() { go cache.Follow(watchCtx, log, catalogAPI) })
	}

	svc := pricing.NewService(
		catalog,
		store.New(pool),
		pricing.NewMetrics(reg),
	)
	if !s.anonymousOrders {
		svc.RefuseAnonymousOrders()
	}
	tlsOpts, err := grpctls.ServerOptions(s.common.GRPCTLS, s.common.GRPCTLSClients)
	if err != nil {
		return err
	}
	srv := grpcserver.New(log, reg, append(append(tr.ServerOptions(), tlsOpts...), auth.ServerOptions(verifier)...)...)
	pricingv1.RegisterPricingServiceServer(srv.GRPC(), server.NewV1(svc))
	pricingpb.RegisterOrcamentoServiceServer(srv.GRPC(), server.NewCompat(svc))

	return srv.Run(ctx, grpcserver.Options{
		Addr:            s.grpcAddr,
		MetricsAddr:     s.metricsAddr,
		ShutdownTimeout: s.common.ShutdownTimeout,
		ShutdownDelay:   s.common.ShutdownDelay,
		Pprof:           s.common.Pprof,
		NoReflection:    !s.common.Reflection,
		Ready:           pool.Ping,
	})
}
