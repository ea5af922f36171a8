// Package rest is the gateway's HTTP surface: the grpc-gateway muxes for the
// canonical /v1 API and the seed-compatible routes, the error mapping, the
// operational endpoints (/healthz, /readyz, /openapi.json), the
// storefront, and the cross-cutting HTTP concerns (metrics, body limit, CORS,
// security headers). It holds no business logic.
package rest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/carbuild/carbuild/catalog/catalogclient"
	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/gateway/internal/pbjson"
	"github.com/carbuild/carbuild/gateway/internal/respcache"
	"github.com/carbuild/carbuild/gateway/web"
	"github.com/carbuild/carbuild/shared/auth"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	gatewayv1 "github.com/carbuild/carbuild/shared/gen/carbuild/gateway/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	"github.com/carbuild/carbuild/shared/gen/openapi"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/mdkey"
)

// Options configure the handler.
type Options struct {
	Catalog, Pricing *grpc.ClientConn
	Backends         *backend.Watcher
	Registry         *prometheus.Registry
	// MetricsHandler, when set, is served at GET /metrics. The gateway
	// binary leaves it nil: its metrics are on the private operations
	// listener, not on the public port.
	MetricsHandler http.Handler
	// MaxBodyBytes bounds request bodies; larger ones get 413.
	MaxBodyBytes int64
	// CORSOrigins lists the origins allowed to call the API from a browser
	// (exact origins; "*" is refused). Empty: none, the storefront is
	// same-origin.
	CORSOrigins []string
	// Cache, when set, answers the catalog's read routes from memory.
	Cache *respcache.Cache
	// Admission, when set, is the overload control (rate limits and load
	// shedding). It wraps the routes just inside authentication, so a
	// client is limited by its verified subject, and also limits the
	// tokens that fail verification by address.
	Admission *edge.Guard
	// Verifier checks bearer tokens (nil: authentication off, a token is
	// refused with 401).
	Verifier *auth.Verifier
	// Log, when set, gets a line for every call a backend failed (warn for
	// overload, timeouts and unavailable backends, error for internal
	// errors), with the detail the client's answer leaves out.
	Log *slog.Logger
}

// compatRoutes are the earlier system's paths, served by the lenient mux.
var compatRoutes = []string{"/health", "/get-pecas", "/calcular", "/pagar"}

// New builds the gateway's handler.
func New(ctx context.Context, o Options) (http.Handler, error) {
	if err := corsOrigins(o.CORSOrigins); err != nil {
		return nil, err
	}
	m := newHTTPMetrics(o.Registry)

	// v1 is strict: unknown JSON fields are a 400. The compat mux ignores them,
	// as the earlier FastAPI gateway did, so its clients keep working.
	v1 := runtime.NewServeMux(muxOptions(m, o.Log, o.Cache, false)...)
	compat := runtime.NewServeMux(muxOptions(m, o.Log, o.Cache, true)...)
	if err := catalogv1.RegisterCatalogServiceHandlerClient(ctx, v1, wireCatalog{catalogv1.NewCatalogServiceClient(o.Catalog)}); err != nil {
		return nil, fmt.Errorf("register catalog v1: %w", err)
	}
	if err := catalogv1.RegisterCatalogAdminServiceHandlerClient(ctx, v1, catalogv1.NewCatalogAdminServiceClient(o.Catalog)); err != nil {
		return nil, fmt.Errorf("register catalog admin v1: %w", err)
	}
	if err := pricingv1.RegisterPricingServiceHandlerClient(ctx, v1, headerKeyPricing{pricingv1.NewPricingServiceClient(o.Pricing)}); err != nil {
		return nil, fmt.Errorf("register pricing v1: %w", err)
	}
	if err := catalogopb.RegisterCatalogoServiceHandlerClient(ctx, compat, wireCatalogo{catalogopb.NewCatalogoServiceClient(o.Catalog)}); err != nil {
		return nil, fmt.Errorf("register catalogo: %w", err)
	}
	if err := pricingpb.RegisterOrcamentoServiceHandlerClient(ctx, compat, pricingpb.NewOrcamentoServiceClient(o.Pricing)); err != nil {
		return nil, fmt.Errorf("register orcamento: %w", err)
	}
	if err := gatewayv1.RegisterGatewayServiceHandlerServer(ctx, compat, o.Backends); err != nil {
		return nil, fmt.Errorf("register gateway health: %w", err)
	}

	mux := http.NewServeMux()
	mux.Handle("/v1/", v1)
	for _, p := range compatRoutes {
		mux.Handle(p, compat)
	}
	mux.Handle("GET /healthz", m.route("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "alive"})
	})))
	mux.Handle("GET /readyz", m.route("/readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !o.Backends.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "not_serving": o.Backends.NotServing()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})))
	if o.MetricsHandler != nil {
		mux.Handle("GET /metrics", m.route("/metrics", o.MetricsHandler))
	}
	mux.Handle("GET /openapi.json", m.route("/openapi.json", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openapi.JSON)
	})))
	mux.Handle("/", m.route("/", web.Handler()))

	var h http.Handler = mux
	h = validInput(h)
	h = requireJSON(h)
	h = noStoreOrders(h)
	h = operatorsOnly(h)
	if o.Admission != nil {
		h = o.Admission.Wrap(h)
	}
	h = authenticate(o.Verifier, o.Admission, h)
	h = limitBody(o.MaxBodyBytes, h)
	h = cors(o.CORSOrigins, h)
	h = baseHeaders(h)
	h = m.measure(h)
	return h, nil
}

func muxOptions(m *httpMetrics, log *slog.Logger, cache *respcache.Cache, compat bool) []runtime.ServeMuxOption {
	// The route label comes first, so that cache hits are labelled too.
	mws := []runtime.Middleware{m.gatewayRoute}
	if cache != nil {
		mws = append(mws, cache.Middleware)
	}
	return []runtime.ServeMuxOption{
		// protojson's JSON, with quotes, orders and /health encoded and
		// decoded directly (package pbjson: the same bytes, less CPU).
		runtime.WithMarshalerOption(runtime.MIMEWildcard, pbjson.New(&runtime.JSONPb{
			MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: compat},
		})),
		runtime.WithErrorHandler(errorHandler(log, compat)),
		runtime.SetQueryParameterParser(&queryParser{}),
		runtime.WithRoutingErrorHandler(routingErrorHandler(compat)),
		runtime.WithIncomingHeaderMatcher(incomingHeaders),
		runtime.WithOutgoingHeaderMatcher(outgoingHeaders),
		runtime.WithMiddlewares(mws...),
		runtime.WithDisableHTTPMethodOverride(),
	}
}

// incomingHeaders forwards only what the backends use: Idempotency-Key
// (POST /v1/orders takes it into the request, headerKeyPricing; POST /pagar's
// backend reads it from the metadata) and Order-Receipt. (grpc-gateway
// forwards Authorization, the bearer token the backends verify again, and
// its own Grpc-Timeout handling regardless.)
func incomingHeaders(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case HeaderIdempotencyKey:
		return mdkey.IdempotencyKey, true
	case HeaderReceipt:
		return mdkey.OrderReceipt, true
	}
	return "", false
}

// outgoingHeaders turns the catalog's "catalog-revision" header metadata
// into X-Catalog-Revision, drops "content-type" (the gRPC transport's own,
// always application/grpc: it tells an HTTP client nothing, and cache hits
// could not repeat it), and forwards any other metadata as grpc-gateway does
// by default, as Grpc-Metadata-<key>.
func outgoingHeaders(key string) (string, bool) {
	switch key {
	case catalogclient.Header:
		return respcache.HeaderRevision, true
	case "content-type":
		return "", false
	case mdkey.OrderReceipt:
		return HeaderReceipt, true
	}
	return runtime.MetadataHeaderPrefix + key, true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// baseHeaders sets the headers every answer carries.
func baseHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// cors lets browser clients on the allowed origins call the API.
func cors(origins []string, next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range origins {
		if o = strings.TrimSpace(o); o != "" {
			allowed[o] = true
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && allowed[origin] {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", HeaderReceipt)
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Set("Access-Control-Allow-Methods", "GET, POST, PATCH, OPTIONS")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+HeaderIdempotencyKey+", "+HeaderReceipt+", Grpc-Timeout")
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// validInput answers 400 to a URL whose path or query is not valid UTF-8
// (e.g. /v1/cars/%ff/parts): protobuf strings must be UTF-8, so such a
// parameter would otherwise fail inside the gRPC client as an internal error
// (500). It also refuses an Idempotency-Key that gRPC metadata cannot carry
// (non-ASCII), which would otherwise be dropped silently, turning a retry
// into a second order.
func validInput(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.Path) || !validQuery(r.URL.RawQuery) {
			writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "the URL path or query is not valid UTF-8", isCompat(r))
			return
		}
		for _, k := range r.Header.Values(HeaderIdempotencyKey) {
			for i := 0; i < len(k); i++ {
				if k[i] < 0x20 || k[i] > 0x7e {
					writeError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "the Idempotency-Key header must be printable ASCII", isCompat(r))
					return
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

func validQuery(raw string) bool {
	// A malformed query is reported by the mux; the values parsed before the
	// error are checked all the same.
	q, _ := url.ParseQuery(raw)
	for k, vs := range q {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

type limitKey struct{}

// limitState records whether a request body went past the limit.
type limitState struct{ exceeded bool }

// limitBody answers 413 to bodies larger than max: at once when
// Content-Length says so, otherwise when reading passes the limit.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			writeError(w, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE",
				fmt.Sprintf("request body of %d bytes is larger than the limit of %d", r.ContentLength, max), isCompat(r))
			return
		}
		st := &limitState{}
		r.Body = &limitedBody{ReadCloser: http.MaxBytesReader(w, r.Body, max), state: st}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), limitKey{}, st)))
	})
}

type limitedBody struct {
	io.ReadCloser
	state *limitState
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			b.state.exceeded = true
		}
	}
	return n, err
}

func bodyTooLarge(r *http.Request) bool {
	st, ok := r.Context().Value(limitKey{}).(*limitState)
	return ok && st.exceeded
}

func isCompat(r *http.Request) bool {
	for _, p := range compatRoutes {
		if r.URL.Path == p {
			return true
		}
	}
	return false
}
