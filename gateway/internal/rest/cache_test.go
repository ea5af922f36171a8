package rest_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/respcache"
	"github.com/carbuild/carbuild/gateway/internal/rest"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// revEcho is the echo catalog keeping the revision contract: every read
// sends "catalog-revision: 5", and WatchRevision reports revision 5, live.
type revEcho struct{ echo }

func sendRevision(ctx context.Context) error {
	return grpc.SetHeader(ctx, metadata.Pairs("catalog-revision", "5"))
}

func (e revEcho) ListCars(ctx context.Context, r *catalogv1.ListCarsRequest) (*catalogv1.ListCarsResponse, error) {
	if err := sendRevision(ctx); err != nil {
		return nil, err
	}
	return e.echo.ListCars(ctx, r)
}

func (e revEcho) ListParts(ctx context.Context, r *catalogv1.ListPartsRequest) (*catalogv1.ListPartsResponse, error) {
	if err := sendRevision(ctx); err != nil {
		return nil, err
	}
	return e.echo.ListParts(ctx, r)
}

func (e revEcho) GetPecas(ctx context.Context, r *catalogopb.Carro) (*catalogopb.PecasResponse, error) {
	if err := sendRevision(ctx); err != nil {
		return nil, err
	}
	return e.echo.GetPecas(ctx, r)
}

func (revEcho) WatchRevision(_ *catalogv1.WatchRevisionRequest, st grpc.ServerStreamingServer[catalogv1.CatalogRevision]) error {
	if err := st.Send(&catalogv1.CatalogRevision{Revision: 5, Live: true}); err != nil {
		return err
	}
	<-st.Context().Done()
	return nil
}

// newCachedHandler returns the real handler in front of the revEcho catalog,
// with a live cache unless cached is false.
func newCachedHandler(tb testing.TB, cached bool) (http.Handler, *prometheus.Registry) {
	tb.Helper()
	conn := serveBackends(tb, revEcho{})
	log := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	var cache *respcache.Cache
	if cached {
		cache = respcache.New(reg, respcache.Options{MaxBytes: 1 << 20, TTL: time.Minute})
		ctx, cancel := context.WithCancel(context.Background())
		tb.Cleanup(cancel)
		go cache.Follow(ctx, log, catalogv1.NewCatalogServiceClient(conn))
	}
	h, err := rest.New(context.Background(), rest.Options{
		Catalog: conn, Pricing: conn, Backends: backend.NewWatcher(log, time.Second, map[string]*grpc.ClientConn{"catalog": conn}),
		Registry: reg, MetricsHandler: http.NotFoundHandler(),
		MaxBodyBytes: 64 << 10, CORSOrigins: []string{"https://shop.example"}, Cache: cache,
	})
	if err != nil {
		tb.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); cached && !cache.Live(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("the cache did not go live")
		}
	}
	return h, reg
}

// TestCache drives the real handler with the cache in front of a catalog
// keeping the revision contract: the outer middlewares still apply to hits,
// and hits are counted under their route template.
func TestCache(t *testing.T) {
	h, reg := newCachedHandler(t, true)
	tests := []struct {
		method, target, body, route string
	}{
		{"GET", "/v1/cars", "", "/v1/cars"},
		{"GET", "/v1/cars/civic/parts?year=2023", "", "/v1/cars/{car_id}/parts"},
		{"POST", "/get-pecas", `{"modelo":"Civic","ano":2023}`, "/get-pecas"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			var first *httptest.ResponseRecorder
			for _, want := range []string{"miss", "hit"} {
				req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
				req.Header.Set("Origin", "https://shop.example")
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				hd := rec.Header()
				if rec.Code != 200 || hd.Get("X-Cache") != want {
					t.Fatalf("%s: %d X-Cache %q, want 200 %q: %s", want, rec.Code, hd.Get("X-Cache"), want, rec.Body)
				}
				if got := hd.Get("X-Catalog-Revision"); got != "5" {
					t.Errorf("%s: X-Catalog-Revision %q, want 5", want, got)
				}
				if hd.Get("X-Content-Type-Options") != "nosniff" || hd.Get("Access-Control-Allow-Origin") != "https://shop.example" {
					t.Errorf("%s: outer middlewares skipped: %v", want, hd)
				}
				if got := hd.Get("Grpc-Metadata-Content-Type"); got != "" {
					t.Errorf("%s: Grpc-Metadata-Content-Type %q, want none", want, got)
				}
				if first == nil {
					first = rec
				} else if rec.Body.String() != first.Body.String() || hd.Get("Content-Type") != first.Header().Get("Content-Type") {
					t.Errorf("hit %q %q differs from miss %q %q", hd.Get("Content-Type"), rec.Body, first.Header().Get("Content-Type"), first.Body)
				}
			}
			if n := served(t, reg, tt.method, tt.route); n != 2 {
				t.Errorf("http_requests_total{route=%q} = %v, want 2 (miss and hit)", tt.route, n)
			}
		})
	}
}

// served reads http_requests_total{method, route, code="200"}.
func served(t *testing.T, reg *prometheus.Registry, method, route string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			if l["method"] == method && l["route"] == route && l["code"] == "200" {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no http_requests_total{method=%q,route=%q,code=\"200\"}", method, route)
	return 0
}

// BenchmarkCatalogRead compares a catalog read answered by the cache with
// the same read through grpc-gateway and gRPC (in memory, so the real
// network hop and the catalog's own work come on top).
func BenchmarkCatalogRead(b *testing.B) {
	for _, cached := range []bool{false, true} {
		name := "uncached"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			h, _ := newCachedHandler(b, cached)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", "/v1/cars/civic/parts?year=2023", nil)
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
