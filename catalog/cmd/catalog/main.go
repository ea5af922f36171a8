// Command catalog serves the car-parts catalog over gRPC
// (carbuild.catalog.v1.CatalogService, the operators' CatalogAdminService and
// the seed-compatible catalogo.CatalogoService), with grpc.health.v1, reflection and Prometheus
// metrics on a separate port.
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

	"github.com/carbuild/carbuild/catalog/internal/cache"
	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/server"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/buildinfo"
	"github.com/carbuild/carbuild/shared/config"
	"github.com/carbuild/carbuild/shared/database"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	"github.com/carbuild/carbuild/shared/grpcserver"
	"github.com/carbuild/carbuild/shared/grpctls"
	"github.com/carbuild/carbuild/shared/logging"
	"github.com/carbuild/carbuild/shared/metrics"
	"github.com/carbuild/carbuild/shared/tracing"
)

type settings struct {
	common                             config.Common
	grpcAddr, metricsAddr, databaseURL string
	dbMaxConns, cacheMaxParts          int
	cacheTTL                           time.Duration
	cache                              bool
	auth                               auth.Settings
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var s settings
	config.TuneGC(os.LookupEnv)
	cfg := config.New("catalog", os.LookupEnv)
	cfg.String(&s.grpcAddr, "grpc-addr", "CATALOG_GRPC_ADDR", "127.0.0.1:50051", "gRPC listen address")
	cfg.String(&s.metricsAddr, "metrics-addr", "CATALOG_METRICS_ADDR", "127.0.0.1:9091", "metrics (/metrics) listen address")
	cfg.Secret(&s.databaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL (required)")
	cfg.Int(&s.dbMaxConns, "db-max-conns", "DB_MAX_CONNS", 8, "maximum database connections")
	cfg.Bool(&s.cache, "cache", "CATALOG_CACHE", true, "keep the catalog in memory, emptied on every catalog_changed notification")
	cfg.Duration(&s.cacheTTL, "cache-ttl", "CATALOG_CACHE_TTL", 30*time.Second, "longest a cached entry is served (a bound even if a notification were lost)")
	cfg.Int(&s.cacheMaxParts, "cache-max-parts", "CATALOG_CACHE_MAX_PARTS", 50000, "most parts held in the cache")
	s.auth.Register(cfg)
	cfg.Common(&s.common, "serve net/http/pprof on the metrics address")
	cfg.GRPCReflection(&s.common)
	cfg.GRPCTLS(&s.common, true)
	if err := cfg.Parse(args); err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, "catalog", s.common.LogLevel, s.common.LogFormat)
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

	tr, err := tracing.Setup(ctx, "catalog", log)
	if err != nil {
		return err
	}
	defer func() {
		if err := tr.Shutdown(); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}()

	reg := metrics.NewRegistry("catalog")
	pool, err := database.Open(ctx, s.databaseURL, database.Options{MaxConns: int32(s.dbMaxConns)}, log, reg)
	if err != nil {
		return err
	}
	defer pool.Close()

	db := store.New(pool)
	var st catalog.Store = db
	var revs server.Revisions // stays nil without the cache: no revision to answer
	if s.cache {
		c := cache.New(st, cache.Options{TTL: s.cacheTTL, MaxParts: s.cacheMaxParts}, reg)
		// The listener outlives ctx: during the shutdown delay and the drain
		// the cache and its revision stay live and correct. It stops once
		// the server has, before the pool closes.
		listenCtx, stopListen := context.WithCancel(context.WithoutCancel(ctx))
		listening := make(chan struct{})
		go func() {
			defer close(listening)
			c.Listen(listenCtx, pool, log)
		}()
		defer func() { stopListen(); <-listening }()
		st, revs = c, c
	}
	svc := catalog.NewService(st)
	tlsOpts, err := grpctls.ServerOptions(s.common.GRPCTLS, s.common.GRPCTLSClients)
	if err != nil {
		return err
	}
	srv := grpcserver.New(log, reg, append(append(tr.ServerOptions(), tlsOpts...), auth.ServerOptions(verifier)...)...)
	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), server.NewV1(svc, revs, srv.Draining()))
	catalogopb.RegisterCatalogoServiceServer(srv.GRPC(), server.NewCompat(svc, revs))
	// Changes go to PostgreSQL, never through the cache: the commit's
	// notification empties the caches.
	catalogv1.RegisterCatalogAdminServiceServer(srv.GRPC(), server.NewAdmin(catalog.NewAdmin(db)))

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
