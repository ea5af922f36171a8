// Package app wires the gateway: one client connection per backend, the
// backend health watcher behind /readyz, the cache of catalog answers kept
// current by the catalog's revision stream, the REST facade (package rest)
// behind the edge's admission control, optionally HTTPS, served with the
// shared bootstrap (package boot) and lifecycle (package lifecycle).
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/gateway/internal/respcache"
	"github.com/carbuild/carbuild/gateway/internal/rest"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/lifecycle"
	"github.com/carbuild/carbuild/shared/metrics"
)

// Options are the gateway's settings (cmd/gateway reads them from flags and
// the environment).
type Options struct {
	// Config is the parsed configuration, logged at start.
	Config                                          slog.LogValuer
	Common                                          config.Common
	Auth                                            auth.Config
	HTTPAddr, MetricsAddr, CatalogAddr, PricingAddr string
	// CORSOrigins is a comma-separated list of browser origins.
	CORSOrigins string
	// BackendTimeout is the longest a backend call may take.
	BackendTimeout, HealthInterval time.Duration
	MaxBodyBytes                   int
	// CacheTTL bounds a cached catalog answer's age (0 turns the cache off),
	// CacheMaxBytes its memory.
	CacheTTL      time.Duration
	CacheMaxBytes int
	Edge          edge.Options
	// TLSCert and TLSKey, when set, serve HTTPS only.
	TLSCert, TLSKey string
}

// Run serves the gateway until ctx ends, then drains and stops.
func Run(ctx context.Context, o Options) error {
	p, err := boot.Start(ctx, boot.Options{Name: "gateway", Config: o.Config, Common: o.Common, Auth: o.Auth})
	if err != nil {
		return err
	}
	defer p.Close()

	catalogConn, err := p.Dial(o.CatalogAddr, o.BackendTimeout, catalogv1.File_carbuild_catalog_v1_catalog_proto, catalogopb.File_catalogo_catalogo_proto)
	if err != nil {
		return err
	}
	pricingConn, err := p.Dial(o.PricingAddr, o.BackendTimeout, pricingv1.File_carbuild_pricing_v1_pricing_proto, pricingpb.File_pricing_pricing_proto)
	if err != nil {
		return err
	}
	watcher := backend.NewWatcher(p.Log, o.HealthInterval, map[string]*grpc.ClientConn{"catalog": catalogConn, "pricing": pricingConn})
	watchCtx, stopWatch := context.WithCancel(context.Background())
	p.Defer(stopWatch)
	go watcher.Run(watchCtx)

	// The cache exists (and its metrics) even when off: it then never goes
	// live and every cacheable read is a bypass.
	cache := respcache.New(p.Registry, respcache.Options{MaxBytes: int64(o.CacheMaxBytes), TTL: o.CacheTTL})
	if o.CacheTTL > 0 && o.CacheMaxBytes > 0 {
		go cache.Follow(watchCtx, p.Log, catalogv1.NewCatalogServiceClient(catalogConn))
	}

	handler, err := rest.New(ctx, rest.Options{
		Catalog:      catalogConn,
		Pricing:      pricingConn,
		Backends:     watcher,
		Registry:     p.Registry,
		MaxBodyBytes: int64(o.MaxBodyBytes),
		CORSOrigins:  strings.Split(o.CORSOrigins, ","),
		Cache:        cache,
		Admission:    edge.New(p.Registry, o.Edge),
		Verifier:     p.Verifier,
		Log:          p.Log,
	})
	if err != nil {
		return err
	}
	handler = p.Tracing.HTTPHandler(handler, "gateway")
	var certs *edge.CertReloader
	if o.TLSCert != "" {
		if certs, err = edge.NewCertReloader(o.TLSCert, o.TLSKey); err != nil {
			return err
		}
		handler = edge.HSTS(handler)
	}

	lis, err := net.Listen("tcp", o.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", o.HTTPAddr, err)
	}
	ops, err := lifecycle.Ops(o.MetricsAddr, p.Registry, o.Common.Pprof, nil)
	if err != nil {
		lis.Close()
		return err
	}
	srv := metrics.NewHTTPServer(o.HTTPAddr, handler, 30*time.Second)
	if certs != nil {
		srv.TLSConfig = edge.TLSConfig(certs)
	}
	// Requests outlive a SIGTERM until drained; their contexts must not be
	// canceled by it, so the server's base context is not ctx.
	srv.BaseContext = func(net.Listener) context.Context { return context.Background() }
	return lifecycle.Run(ctx, p.Log, lifecycle.Options{
		ShutdownDelay:   o.Common.ShutdownDelay,
		ShutdownTimeout: o.Common.ShutdownTimeout,
		NotReady:        watcher.NotReady,
	}, lifecycle.HTTP("http", lis, srv), ops)
}
