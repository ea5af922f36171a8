package reference

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	"github.com/carbuild/carbuild/shared/grpctest"
)

// echoPricing prices every unit at R$ 1.00 and refuses the part "gone".
type echoPricing struct {
	pricingv1.UnimplementedPricingServiceServer
}

func (echoPricing) CreateQuote(_ context.Context, in *pricingv1.CreateQuoteRequest) (*pricingv1.Quote, error) {
	q := &pricingv1.Quote{}
	for _, it := range in.GetItems() {
		if it.GetPartId() == "gone" {
			return nil, status.Error(codes.NotFound, "no such part")
		}
		q.Lines = append(q.Lines, &pricingv1.QuoteLine{PartId: it.GetPartId(), Quantity: it.GetQuantity(),
			UnitPrice: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 100}})
	}
	return q, nil
}

func (echoPricing) PlaceOrder(_ context.Context, in *pricingv1.PlaceOrderRequest) (*pricingv1.Order, error) {
	return &pricingv1.Order{Id: "order-" + in.GetIdempotencyKey(), Status: pricingv1.OrderStatus_ORDER_STATUS_CONFIRMED, Total: in.GetExpectedTotal()}, nil
}

func TestRelay(t *testing.T) {
	_, conn := grpctest.Serve(t, func(s *grpc.Server) { pricingv1.RegisterPricingServiceServer(s, echoPricing{}) })
	h := Relay(pricingv1.NewPricingServiceClient(conn), []byte(`{"parts":[]}`))
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
		want                     string // a substring of the answer
	}{
		{"health from memory", "GET", "/health", "", 200, `{"status":"healthy"}`},
		{"parts page from memory", "GET", "/v1/cars/civic/parts?year=2023", "", 200, `{"parts":[]}`},
		{"quote, camelCase and unpopulated fields", "POST", "/v1/quotes", `{"items":[{"partId":"7","quantity":2}]}`,
			200, `"lines":[{"partId":"7","name":"","quantity":2,"unitPrice":{"currencyCode":"BRL","minorUnits":"100"},"lineTotal":null}]`},
		{"order", "POST", "/v1/orders", `{"idempotencyKey":"k-123456","items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"2100"}}`,
			200, `"id":"order-k-123456","status":"ORDER_STATUS_CONFIRMED"`},
		{"body that is not the message", "POST", "/v1/quotes", `{"itens":[]}`, 400, "unknown field"},
		{"backend error", "POST", "/v1/quotes", `{"items":[{"partId":"gone","quantity":1}]}`, 502, "no such part"},
		{"other routes", "GET", "/v1/orders", "", 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body)))
			got := w.Body.String()
			var compact bytes.Buffer // protojson varies its spacing between builds
			if json.Compact(&compact, w.Body.Bytes()) == nil {
				got = compact.String()
			}
			if w.Code != tc.code || !strings.Contains(got, tc.want) {
				t.Fatalf("%s %s: %d %s, want %d with %s", tc.method, tc.path, w.Code, got, tc.code, tc.want)
			}
			if tc.code == http.StatusOK && w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
}
