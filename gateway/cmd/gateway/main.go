// Command gateway is Car Build's only public entry: the REST facade
// (canonical /v1 and the seed-compatible routes) over the catalog and pricing
// gRPC services, plus /healthz, /readyz, /openapi.json and the storefront
// page; /metrics (and /debug/pprof/) are on a separate, private listener.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/gateway/internal/respcache"
	"github.com/carbuild/carbuild/gateway/internal/rest"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/buildinfo"
	"github.com/carbuild/carbuild/shared/catalogrev"
	"github.com/carbuild/carbuild/shared/config"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	"github.com/carbuild/carbuild/shared/grpcclient"
	"github.com/carbuild/carbuild/shared/grpctls"
	"github.com/carbuild/carbuild/shared/logging"
	"github.com/carbuild/carbuild/shared/metrics"
	"github.com/carbuild/carbuild/shared/tracing"
)

type settings struct {
	common                                          config.Common
	httpAddr, catalogAddr, pricingAddr, corsOrigins string
	metricsAddr                                     string
	backendTimeout, healthInterval, cacheTTL        time.Duration
	maxBodyBytes, cacheMaxBytes                     int
	edge                                            edgeSettings
	auth                                            auth.Settings
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	var s settings
	config.TuneGC(os.LookupEnv)
	cfg := config.New("gateway", os.LookupEnv)
	cfg.String(&s.httpAddr, "http-addr", "GATEWAY_HTTP_ADDR", "127.0.0.1:8000", "HTTP listen address (REST, health, page): the public port")
	cfg.String(&s.metricsAddr, "metrics-addr", "GATEWAY_METRICS_ADDR", "127.0.0.1:9093", "operations listen address (/metrics; /debug/pprof/ with -pprof): keep it private")
	cfg.String(&s.catalogAddr, "catalog-addr", "CATALOG_ADDR", "127.0.0.1:50051", "catalog gRPC address (dns:///host:port balances over every address)")
	cfg.String(&s.pricingAddr, "pricing-addr", "PRICING_ADDR", "127.0.0.1:50052", "pricing gRPC address (dns:///host:port balances over every address)")
	cfg.Duration(&s.backendTimeout, "backend-timeout", "BACKEND_TIMEOUT", 5*time.Second, "longest a backend call may take; a client's Grpc-Timeout header can only shorten it")
	cfg.Duration(&s.healthInterval, "health-interval", "HEALTH_INTERVAL", time.Second, "how often backend health is polled")
	cfg.Int(&s.maxBodyBytes, "max-body-bytes", "MAX_BODY_BYTES", 64<<10, "largest request body accepted; larger gets 413")
	cfg.Int(&s.cacheMaxBytes, "cache-max-bytes", "GATEWAY_CACHE_MAX_BYTES", 8<<20, "memory bound of the cache of catalog answers (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST /get-pecas)")
	cfg.Duration(&s.cacheTTL, "cache-ttl", "GATEWAY_CACHE_TTL", 30*time.Second, "longest a cached catalog answer is served; changes empty the cache at once, this bounds a missed one; 0 turns the cache off")
	cfg.String(&s.corsOrigins, "cors-origins", "CORS_ORIGINS", "", "comma-separated browser origins (scheme://host[:port]) allowed by CORS; empty: none (the storefront is same-origin)")
	s.edge.define(cfg)
	s.auth.Register(cfg)
	cfg.GRPCTLS(&s.common, false)
	cfg.Common(&s.common, "serve net/http/pprof under /debug/pprof/ on the metrics address")
	if err := cfg.Parse(args); err != nil {
		return err
	}
	if s.cacheTTL > 0 && s.cacheMaxBytes > 0 {
		config.ReserveOffHeap(os.LookupEnv, int64(s.cacheMaxBytes)) // the cache's ring is outside the heap
	}
	log, err := logging.New(os.Stderr, "gateway", s.common.LogLevel, s.common.LogFormat)
	if err != nil {
		return err
	}
	log.Info("starting", "version", buildinfo.Version, "commit", buildinfo.Commit, "config", cfg)
	verifier, err := auth.NewVerifier(s.auth.Config())
	if err != nil {
		return err
	}
	if !verifier.Enabled() {
		log.Warn("AUTH_ISSUER is not set: every caller is anonymous and bearer tokens are refused")
	}

	tr, err := tracing.Setup(ctx, "gateway", log)
	if err != nil {
		return err
	}
	defer func() {
		if err := tr.Shutdown(); err != nil {
			log.Warn("tracing shutdown", "err", err)
		}
	}()

	reg := metrics.NewRegistry("gateway")
	clientMetrics := grpcclient.NewMetrics(reg)
	tlsDial, err := grpctls.DialOptions(s.common.GRPCTLS)
	if err != nil {
		return err
	}
	dial := func(target string) (*grpc.ClientConn, error) {
		return grpcclient.Dial(target, clientMetrics, grpcclient.Options{DefaultTimeout: s.backendTimeout, Extra: append(tr.DialOptions(), tlsDial...)})
	}
	catalogConn, err := dial(s.catalogAddr)
	if err != nil {
		return err
	}
	defer catalogConn.Close()
	pricingConn, err := dial(s.pricingAddr)
	if err != nil {
		return err
	}
	defer pricingConn.Close()

	watcher := backend.NewWatcher(log, s.healthInterval, map[string]*grpc.ClientConn{"catalog": catalogConn, "pricing": pricingConn})
	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go watcher.Run(watchCtx)

	// The cache exists (and its metrics) even when off: it then never goes
	// live and every cacheable read is a bypass.
	cache := respcache.New(reg, respcache.Options{MaxBytes: int64(s.cacheMaxBytes), TTL: s.cacheTTL})
	if s.cacheTTL > 0 && s.cacheMaxBytes > 0 {
		go catalogrev.NewWatcher(log, catalogv1.NewCatalogServiceClient(catalogConn), cache).Run(watchCtx)
	}

	handler, err := rest.New(ctx, rest.Options{
		Catalog:      catalogConn,
		Pricing:      pricingConn,
		Backends:     watcher,
		Registry:     reg,
		MaxBodyBytes: int64(s.maxBodyBytes),
		CORSOrigins:  strings.Split(s.corsOrigins, ","),
		Cache:        cache,
		Admission:    edge.New(reg, s.edge.options()),
		Verifier:     verifier,
	})
	if err != nil {
		return err
	}

	handler = tr.HTTPHandler(handler, "gateway")
	useTLS, err := s.edge.serveTLS()
	if err != nil {
		return err
	}
	var certs *edge.CertReloader
	if useTLS {
		if certs, err = edge.NewCertReloader(s.edge.tlsCert, s.edge.tlsKey); err != nil {
			return err
		}
		handler = edge.HSTS(handler)
	}

	lis, err := net.Listen("tcp", s.httpAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.httpAddr, err)
	}
	ops, err := listenOps(s.metricsAddr, reg, s.common.Pprof)
	if err != nil {
		lis.Close()
		return err
	}
	srv := metrics.NewHTTPServer(s.httpAddr, handler, 30*time.Second)
	scheme := "http"
	if useTLS {
		srv.TLSConfig, scheme = edge.TLSConfig(certs), "https"
	}
	// Requests outlive a SIGTERM until drained; their contexts must not be
	// canceled by it, so the server's base context is not ctx.
	srv.BaseContext = func(net.Listener) context.Context { return context.Background() }
	errc := make(chan error, 2)
	go ops.serve(errc)
	go func() {
		serve := func() error { return srv.Serve(lis) }
		if useTLS {
			serve = func() error { return srv.ServeTLS(lis, "", "") } // the certificate comes from TLSConfig
		}
		if err := serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http: %w", err)
		}
	}()
	log.Info("serving", "http", scheme+"://"+lis.Addr().String(), "metrics", "http://"+ops.lis.Addr().String()+"/metrics")

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		log.Error("server failed; shutting down", "err", runErr)
	}
	watcher.NotReady()
	if s.common.ShutdownDelay > 0 {
		time.Sleep(s.common.ShutdownDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.common.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("drain http: %w", err))
		_ = srv.Close()
	}
	// Metrics stay up through the drain, so its last seconds are scraped.
	octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ocancel()
	if err := ops.srv.Shutdown(octx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("shutdown metrics: %w", err))
	}
	log.Info("stopped")
	return runErr
}
