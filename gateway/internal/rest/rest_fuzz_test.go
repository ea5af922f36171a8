package rest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/gateway/internal/rest"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
	commonpb "github.com/carbuild/carbuild/shared/gen/common"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/grpctest"
)

// The gateway's request decoding is fuzzed through the real handler that
// rest.New builds, over gRPC (in memory, bufconn) to backends that accept
// every request and echo what they got into their answer. Since the
// backends never fail, any 5xx is the gateway's own fault: the answer to any
// request must be 2xx or a 4xx with the JSON error body, never a panic.

// echo implements the four backend services; every call succeeds.
type echo struct {
	catalogv1.UnimplementedCatalogServiceServer
	catalogopb.UnimplementedCatalogoServiceServer
	pricingv1.UnimplementedPricingServiceServer
	pricingpb.UnimplementedOrcamentoServiceServer
}

func brl(n int64) *moneyv1.Money { return &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: n} }

func (echo) ListCars(context.Context, *catalogv1.ListCarsRequest) (*catalogv1.ListCarsResponse, error) {
	return &catalogv1.ListCarsResponse{Cars: []*catalogv1.Car{{Id: "civic", Name: "Civic", FirstYear: 2023, LastYear: 2023}}}, nil
}

func (echo) ListParts(_ context.Context, r *catalogv1.ListPartsRequest) (*catalogv1.ListPartsResponse, error) {
	return &catalogv1.ListPartsResponse{Parts: []*catalogv1.Part{{Id: "1", CarId: r.GetCarId(), Name: r.GetPageToken(), Price: brl(int64(r.GetYear()))}}, NextPageToken: r.GetPageToken()}, nil
}

func (echo) BatchGetParts(_ context.Context, r *catalogv1.BatchGetPartsRequest) (*catalogv1.BatchGetPartsResponse, error) {
	resp := &catalogv1.BatchGetPartsResponse{}
	for _, id := range r.GetIds() {
		resp.Parts = append(resp.Parts, &catalogv1.Part{Id: id, Price: brl(1)})
	}
	return resp, nil
}

func (echo) GetPecas(_ context.Context, r *catalogopb.Carro) (*catalogopb.PecasResponse, error) {
	return &catalogopb.PecasResponse{Pecas: []*commonpb.Peca{{Id: "1", Nome: r.GetModelo(), Valor: float64(r.GetAno())}}}, nil
}

func quoteLines(items []*pricingv1.LineItem) []*pricingv1.QuoteLine {
	var out []*pricingv1.QuoteLine
	for _, it := range items {
		out = append(out, &pricingv1.QuoteLine{PartId: it.GetPartId(), Quantity: it.GetQuantity(), UnitPrice: brl(1), LineTotal: brl(int64(it.GetQuantity()))})
	}
	return out
}

func (echo) CreateQuote(_ context.Context, r *pricingv1.CreateQuoteRequest) (*pricingv1.Quote, error) {
	return &pricingv1.Quote{Lines: quoteLines(r.GetItems()), Subtotal: brl(0), Shipping: brl(0), Total: brl(0)}, nil
}

func (echo) PlaceOrder(_ context.Context, r *pricingv1.PlaceOrderRequest) (*pricingv1.Order, error) {
	return &pricingv1.Order{Id: r.GetIdempotencyKey(), Status: pricingv1.OrderStatus_ORDER_STATUS_CONFIRMED, Lines: quoteLines(r.GetItems()), Total: r.GetExpectedTotal()}, nil
}

func (echo) GetOrder(_ context.Context, r *pricingv1.GetOrderRequest) (*pricingv1.Order, error) {
	return &pricingv1.Order{Id: r.GetOrderId()}, nil
}

func (echo) Calcular(_ context.Context, r *pricingpb.OrcamentoRequest) (*pricingpb.Preco, error) {
	return &pricingpb.Preco{Preco: float64(len(r.GetItens()))}, nil
}

func (echo) RealizarCompra(_ context.Context, r *pricingpb.CompraRequest) (*pricingpb.CompraResponse, error) {
	return &pricingpb.CompraResponse{PedidoId: "x", Status: "CONFIRMADO", ValorTotal: r.GetValorTotal(), ItensComprados: r.GetItens()}, nil
}

// backends is what the in-memory backend of these tests implements.
type backends interface {
	catalogv1.CatalogServiceServer
	catalogopb.CatalogoServiceServer
	pricingv1.PricingServiceServer
	pricingpb.OrcamentoServiceServer
}

// serveBackends serves b as every backend on an in-memory listener and
// returns a connection to it.
func serveBackends(tb testing.TB, b backends) *grpc.ClientConn {
	tb.Helper()
	_, conn := grpctest.Serve(tb, func(srv *grpc.Server) {
		catalogv1.RegisterCatalogServiceServer(srv, b)
		catalogopb.RegisterCatalogoServiceServer(srv, b)
		pricingv1.RegisterPricingServiceServer(srv, b)
		pricingpb.RegisterOrcamentoServiceServer(srv, b)
	})
	return conn
}

// newHandler returns the gateway's real handler over the echo backends.
func newHandler(tb testing.TB) http.Handler {
	tb.Helper()
	return newHandlerWith(tb, nil)
}

// newHandlerWith is newHandler behind the admission guard (nil: none).
func newHandlerWith(tb testing.TB, guard *edge.Guard) http.Handler {
	tb.Helper()
	conn := serveBackends(tb, echo{})
	log := slog.New(slog.DiscardHandler)
	watcher := backend.NewWatcher(log, time.Second, map[string]*grpc.ClientConn{"catalog": conn, "pricing": conn})
	h, err := rest.New(context.Background(), rest.Options{
		Catalog: conn, Pricing: conn, Backends: watcher,
		Registry: prometheus.NewRegistry(), MetricsHandler: http.NotFoundHandler(),
		MaxBodyBytes: 64 << 10, CORSOrigins: []string{"https://shop.example"},
		Admission: guard,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// routes are the REST routes with a body or parameters; the fuzzer picks
// one by number and fills in the path parameter, query, body and header.
var routes = []struct{ method, path string }{
	{"GET", "/v1/cars"},
	{"GET", "/v1/cars/{}/parts"},
	{"GET", "/v1/parts:batchGet"},
	{"POST", "/v1/quotes"},
	{"POST", "/v1/orders"},
	{"GET", "/v1/orders/{}"},
	{"POST", "/get-pecas"},
	{"POST", "/calcular"},
	{"POST", "/pagar"},
	{"GET", "/health"},
	{"GET", "/{}"},
	{"OPTIONS", "/v1/quotes"},
}

// FuzzREST sends fuzzed requests to every route of the real handler.
func FuzzREST(f *testing.F) {
	seeds := []struct {
		route             uint8
		param, query, key string
		body              string
	}{
		{0, "", "", "", ""},
		{1, "civic", "year=2023&page_size=3", "", ""},
		{1, "Civic", "page_token=Y2l2aWM6OQ&page_size=101", "", ""},
		{1, "\xff", "year=abc", "", ""},
		{1, "' OR 1=1 --", "page_size=-1&year=99999999999", "", ""},
		{2, "", "ids=7&ids=10", "", ""},
		{2, "", "ids=%ff&ids=", "", ""},
		{3, "", "", "", `{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`},
		{3, "", "", "", `{"items":[{"partId":7,"quantity":"1"}],"unknown":1}`},
		{3, "", "", "", `{"items":[{"partId":"7","quantity":99999999999}]}`},
		{3, "", "", "", `{"items":{}}`},
		{3, "", "", "", `[]`},
		{4, "", "", "readme-order-0001", `{"items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"802000"}}`},
		{4, "", "", "", `{"idempotencyKey":"k","expectedTotal":{"minorUnits":"1e400"}}`},
		{4, "", "", "é\xff", `{"idempotency_key":"k","expected_total":{"currency_code":"BRL","minor_units":-1}}`},
		{5, "6c1f3a2e-0000-4000-8000-000000000001", "", "", ""},
		{5, "../../etc/passwd", "", "", ""},
		{6, "", "", "", `{"modelo":"Civic","ano":2023}`},
		{6, "", "", "", `{"modelo":"CİVİC","ano":"2023","extra":[1,2]}`},
		{6, "", "", "", `{"modelo":null,"ano":1e10}`},
		{7, "", "", "", `{"itens":[{"peca":{"id":"8","nome":"Chassi","valor":8000},"quantidade":1}]}`},
		{7, "", "", "", `{"itens":[{"peca":{"id":"8","valor":"NaN"},"quantidade":-1}]}`},
		{8, "", "", "pagar-key-0001", `{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}`},
		{8, "", "", "", `{"itens":[],"valor_total":"Infinity"}`},
		{9, "", "", "", ""},
		{10, "index.html", "", "", ""},
		{10, "%00", "", "", ""},
		{11, "", "", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.route, s.param, s.query, []byte(s.body), s.key)
	}
	h := newHandler(f)
	f.Fuzz(func(t *testing.T, route uint8, param, query string, body []byte, key string) {
		rt := routes[int(route)%len(routes)]
		target := strings.Replace(rt.path, "{}", url.PathEscape(param), 1)
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(rt.method, "http://gateway"+target, bytes.NewReader(body))
		if err != nil {
			return // not a request a client can send
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", "https://shop.example")
		if rt.method == "OPTIONS" {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		if key != "" && !strings.ContainsAny(key, "\r\n\x00") {
			req.Header.Set("Idempotency-Key", key)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s body %q: %d %s", rt.method, target, body, rec.Code, rec.Body)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s %s: answer without X-Content-Type-Options", rt.method, target)
		}
		api := strings.HasPrefix(req.URL.Path, "/v1/") || slices.Contains([]string{"/get-pecas", "/calcular", "/pagar", "/health"}, req.URL.Path)
		if rec.Code >= 400 && api {
			var e rest.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != rec.Code || e.Status == "" || e.Message == "" {
				t.Fatalf("%s %s: %d with body %q, want the JSON error body", rt.method, target, rec.Code, rec.Body)
			}
		}
	})
}

// TestInvalidInput pins what the fuzzer found: a URL that is not UTF-8 was
// a 500, and a non-ASCII Idempotency-Key was dropped silently.
func TestInvalidInput(t *testing.T) {
	h := newHandler(t)
	tests := []struct {
		name, method, target, key, body string
		want                            int
	}{
		{"path not UTF-8", "GET", "/v1/cars/%ff/parts", "", "", 400},
		{"query not UTF-8", "GET", "/v1/parts:batchGet?ids=%ff", "", "", 400},
		{"page token not UTF-8", "GET", "/v1/cars/civic/parts?page_token=%c3", "", "", 400},
		{"order id not UTF-8", "GET", "/v1/orders/%ff", "", "", 400},
		{"unicode path is fine", "GET", "/v1/cars/c%C3%ADvic/parts", "", "", 200},
		{"non-ASCII key", "POST", "/v1/orders", "chave-é-0001", `{"items":[]}`, 400},
		{"non-ASCII key, compat", "POST", "/pagar", "chave-é-0001", `{"itens":[]}`, 400},
		{"ASCII key", "POST", "/pagar", "chave-0001", `{"itens":[]}`, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.key != "" {
				req.Header.Set("Idempotency-Key", tt.key)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("got %d %s, want %d", rec.Code, rec.Body, tt.want)
			}
		})
	}
}
