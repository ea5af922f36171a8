// Package app wires the catalog service: the store, the in-memory cache kept
// current by catalog_changed notifications, the catalog service and its two
// gRPC surfaces (carbuild.catalog.v1.CatalogService and the seed-compatible
// catalogo.CatalogoService), served with the shared bootstrap (package boot).
package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/carbuild/carbuild/catalog/internal/cache"
	"github.com/carbuild/carbuild/catalog/internal/catalog"
	"github.com/carbuild/carbuild/catalog/internal/server"
	"github.com/carbuild/carbuild/catalog/internal/store"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// Options are the catalog's settings (cmd/catalog reads them from flags and
// the environment).
type Options struct {
	// Config is the parsed configuration, logged at start.
	Config                             slog.LogValuer
	Common                             config.Common
	Auth                               auth.Config
	GRPCAddr, MetricsAddr, DatabaseURL string
	DBMaxConns                         int
	// Cache keeps the catalog in memory, emptied on every catalog_changed
	// notification; CacheTTL bounds an entry's age even if a notification
	// were lost, CacheMaxParts its size.
	Cache         bool
	CacheTTL      time.Duration
	CacheMaxParts int
}

// Run serves the catalog until ctx ends, then drains and stops.
func Run(ctx context.Context, o Options) error {
	p, err := boot.Start(ctx, boot.Options{
		Name: "catalog", Config: o.Config, Common: o.Common, Auth: o.Auth,
		Database: true, DatabaseURL: o.DatabaseURL, DBMaxConns: o.DBMaxConns,
	})
	if err != nil {
		return err
	}
	defer p.Close()

	db := store.New(p.Pool)
	var st catalog.Store = db
	var revs server.Revisions // stays nil without the cache: no revision to answer
	if o.Cache {
		c := cache.New(st, cache.Options{TTL: o.CacheTTL, MaxParts: o.CacheMaxParts}, p.Registry)
		// The listener outlives ctx: during the shutdown delay and the drain
		// the cache and its revision stay live and correct. It stops once
		// the server has, before the pool closes.
		listenCtx, stopListen := context.WithCancel(context.WithoutCancel(ctx))
		listening := make(chan struct{})
		go func() {
			defer close(listening)
			c.Listen(listenCtx, p.Pool, p.Log)
		}()
		p.Defer(func() { stopListen(); <-listening })
		st, revs = c, c
	}
	svc := catalog.NewService(st)
	srv, err := p.GRPCServer()
	if err != nil {
		return err
	}
	catalogv1.RegisterCatalogServiceServer(srv.GRPC(), server.NewV1(svc, revs, srv.Draining()))
	catalogopb.RegisterCatalogoServiceServer(srv.GRPC(), server.NewCompat(svc, revs))
	// Changes go to PostgreSQL, never through the cache: the commit's
	// notification empties the caches.
	catalogv1.RegisterCatalogAdminServiceServer(srv.GRPC(), server.NewAdmin(catalog.NewAdmin(db)))
	return p.ServeGRPC(ctx, srv, o.GRPCAddr, o.MetricsAddr)
}
