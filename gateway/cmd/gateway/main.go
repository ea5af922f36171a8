// Command gateway is Car Build's only public entry: the REST facade
// (canonical /v1 and the seed-compatible routes) over the catalog and pricing
// gRPC services, plus /healthz, /readyz, /openapi.json and the storefront
// page; /metrics (and /debug/pprof/) are on a separate, private listener.
// It reads its settings and runs package app.
package main

import (
	"context"
	"os"
	"time"

	"github.com/carbuild/carbuild/gateway/internal/app"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/config"
)

func main() { boot.Main("gateway", run) }

func run(ctx context.Context, args []string) error {
	var o app.Options
	var authSettings auth.Settings
	var edge edgeSettings
	cfg := config.New("gateway", os.LookupEnv)
	cfg.String(&o.HTTPAddr, "http-addr", "GATEWAY_HTTP_ADDR", "127.0.0.1:8000", "HTTP listen address (REST, health, page): the public port")
	cfg.String(&o.MetricsAddr, "metrics-addr", "GATEWAY_METRICS_ADDR", "127.0.0.1:9093", "operations listen address (/metrics; /debug/pprof/ with -pprof): keep it private")
	cfg.String(&o.CatalogAddr, "catalog-addr", "CATALOG_ADDR", "127.0.0.1:50051", "catalog gRPC address (dns:///host:port balances over every address)")
	cfg.String(&o.PricingAddr, "pricing-addr", "PRICING_ADDR", "127.0.0.1:50052", "pricing gRPC address (dns:///host:port balances over every address)")
	cfg.Duration(&o.BackendTimeout, "backend-timeout", "BACKEND_TIMEOUT", 5*time.Second, "longest a backend call may take; a client's Grpc-Timeout header can only shorten it")
	cfg.Duration(&o.HealthInterval, "health-interval", "HEALTH_INTERVAL", time.Second, "how often backend health is polled")
	cfg.Int(&o.MaxBodyBytes, "max-body-bytes", "MAX_BODY_BYTES", 64<<10, "largest request body accepted; larger gets 413")
	cfg.Int(&o.CacheMaxBytes, "cache-max-bytes", "GATEWAY_CACHE_MAX_BYTES", 8<<20, "memory bound of the cache of catalog answers (GET /v1/cars, GET /v1/cars/{car_id}/parts, POST /get-pecas)")
	cfg.Duration(&o.CacheTTL, "cache-ttl", "GATEWAY_CACHE_TTL", 30*time.Second, "longest a cached catalog answer is served; changes empty the cache at once, this bounds a missed one; 0 turns the cache off")
	cfg.String(&o.CORSOrigins, "cors-origins", "CORS_ORIGINS", "", "comma-separated browser origins (scheme://host[:port]) allowed by CORS; empty: none (the storefront is same-origin)")
	edge.define(cfg)
	authSettings.Register(cfg)
	cfg.GRPCTLS(&o.Common, false)
	cfg.Common(&o.Common, "serve net/http/pprof under /debug/pprof/ on the metrics address")
	if err := cfg.Parse(args); err != nil {
		return err
	}
	useTLS, err := edge.serveTLS()
	if err != nil {
		return err
	}
	if useTLS {
		o.TLSCert, o.TLSKey = edge.tlsCert, edge.tlsKey
	}
	o.Config, o.Auth, o.Edge = cfg, authSettings.Config(), edge.options()
	return app.Run(ctx, o)
}
