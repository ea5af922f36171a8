// Package app wires the pricing service: the order store, the catalog client
// with its parts cache, the pricing service and its two gRPC surfaces
// (carbuild.pricing.v1.PricingService and the seed-compatible
// pricing.OrcamentoService), served with the shared bootstrap (package boot).
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/pricing/internal/catalogclient"
	"github.com/carbuild/carbuild/pricing/internal/groupcommit"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/server"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
)

// Options are pricing's settings (cmd/pricing reads them from flags and the
// environment).
type Options struct {
	// Config is the parsed configuration, logged at start.
	Config                                          slog.LogValuer
	Common                                          config.Common
	Auth                                            auth.Config
	GRPCAddr, MetricsAddr, DatabaseURL, CatalogAddr string
	DBMaxConns                                      int
	// CatalogTimeout is the deadline of each call to the catalog.
	CatalogTimeout time.Duration
	// PartsCacheTTL bounds a cached catalog part's age (0 turns the cache
	// off), PartsCacheMax the cache's size.
	PartsCacheTTL time.Duration
	PartsCacheMax int
	// AnonymousOrders accepts orders without a bearer token.
	AnonymousOrders bool
	// OrderBatchMax is the most orders committed in one transaction (group
	// commit); 1 commits each order alone. OrderBatchFlushers is the most
	// such transactions in flight at once.
	OrderBatchMax, OrderBatchFlushers int
}

// Run serves pricing until ctx ends, then drains and stops.
func Run(ctx context.Context, o Options) error {
	p, err := boot.Start(ctx, boot.Options{
		Name: "pricing", Config: o.Config, Common: o.Common, Auth: o.Auth,
		Database: true, DatabaseURL: o.DatabaseURL, DBMaxConns: o.DBMaxConns,
	})
	if err != nil {
		return err
	}
	defer p.Close()

	conn, err := p.Dial(o.CatalogAddr, o.CatalogTimeout, catalogv1.File_carbuild_catalog_v1_catalog_proto)
	if err != nil {
		return err
	}
	// The cache exists (and its metrics) even when off: it then never goes
	// live and every look-up is a bypass.
	catalogAPI := catalogv1.NewCatalogServiceClient(conn)
	cache := catalogclient.NewCache(p.Registry, catalogclient.CacheOptions{MaxParts: o.PartsCacheMax, TTL: o.PartsCacheTTL})
	catalog := catalogclient.New(catalogAPI, o.CatalogTimeout, cache)
	if o.PartsCacheTTL > 0 && o.PartsCacheMax > 0 {
		watchCtx, stopWatch := context.WithCancel(context.Background())
		p.Defer(stopWatch)
		catalog.OnFirstUse(func() { go cache.Follow(watchCtx, p.Log, catalogAPI) })
	}

	orders := store.New(p.Pool)
	if o.OrderBatchMax > 1 {
		sizes := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carbuild_order_batch_size",
			Help:    "Orders per insert transaction (group commit): one commit, so one WAL flush, confirms them all.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		})
		// Where an order's time goes before its answer: queued for a
		// flusher, then the batch's transaction (insert and commit).
		seconds := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
		waited := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carbuild_order_batch_wait_seconds",
			Help:    "How long a batch's oldest order queued for a free flusher (group commit).",
			Buckets: seconds,
		})
		took := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "carbuild_order_batch_flush_seconds",
			Help:    "How long a batch's insert transaction took, commit included (group commit).",
			Buckets: seconds,
		})
		p.Registry.MustRegister(sizes, waited, took)
		orders = store.NewGroupCommit(p.Pool, groupcommit.Options{
			MaxBatch: o.OrderBatchMax, Flushers: o.OrderBatchFlushers,
			Observe: func(b groupcommit.Batch) {
				sizes.Observe(float64(b.Size))
				waited.Observe(b.Waited.Seconds())
				took.Observe(b.Took.Seconds())
			},
		})
	}
	svc := pricing.NewService(catalog, orders, pricing.NewMetrics(p.Registry))
	if !o.AnonymousOrders {
		svc.RefuseAnonymousOrders()
	}
	srv, err := p.GRPCServer()
	if err != nil {
		return err
	}
	pricingv1.RegisterPricingServiceServer(srv.GRPC(), server.NewV1(svc))
	pricingpb.RegisterOrcamentoServiceServer(srv.GRPC(), server.NewCompat(svc))
	return p.ServeGRPC(ctx, srv, o.GRPCAddr, o.MetricsAddr)
}
