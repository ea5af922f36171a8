package rest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/gateway/internal/rest"
)

// TestBrowserDefaults pins the browser-facing answers of issue #15: a
// cross-site "simple" POST (no preflight) is refused with 415 before any
// backend is called, CORS answers only configured origins, and order
// answers are never stored.
func TestBrowserDefaults(t *testing.T) {
	h := newHandler(t) // CORS: https://shop.example only
	const order = `{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}`
	tests := []struct {
		name, method, target, contentType, origin, body string
		wantCode                                        int
		wantACAO, wantCacheControl                      string
	}{
		{"cross-site text/plain order", "POST", "/pagar", "text/plain", "http://evil.example", order, 415, "", "no-store"},
		{"form order", "POST", "/pagar", "application/x-www-form-urlencoded", "http://evil.example", order, 415, "", "no-store"},
		{"multipart quote", "POST", "/v1/quotes", "multipart/form-data; boundary=x", "", `{"items":[]}`, 415, "", ""},
		{"no content type", "POST", "/v1/quotes", "", "", `{"items":[]}`, 415, "", ""},
		{"no content type, no body", "POST", "/v1/quotes", "", "", "", 200, "", ""},
		{"JSON look-alike", "POST", "/v1/quotes", "application/jsonx", "", `{"items":[]}`, 415, "", ""},
		{"JSON with charset", "POST", "/v1/quotes", "application/json; charset=utf-8", "", `{"items":[]}`, 200, "", ""},
		{"JSON order, evil origin", "POST", "/pagar", "application/json", "http://evil.example", order, 200, "", "no-store"},
		{"JSON order, allowed origin", "POST", "/pagar", "application/json", "https://shop.example", order, 200, "https://shop.example", "no-store"},
		{"v1 order", "POST", "/v1/orders", "application/json", "", `{"idempotencyKey":"k1","items":[]}`, 200, "", "no-store"},
		{"v1 order read", "GET", "/v1/orders/k1", "", "", "", 200, "", "no-store"},
		{"GET needs no content type", "GET", "/v1/cars", "", "https://shop.example", "", 200, "https://shop.example", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, tt.target, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			if tt.origin != "" {
				req.Header.Set("Origin", tt.origin)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("status: got %d %s, want %d", rec.Code, rec.Body, tt.wantCode)
			}
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tt.wantACAO {
				t.Errorf("Access-Control-Allow-Origin: got %q, want %q", got, tt.wantACAO)
			}
			if got := rec.Header().Get("Cache-Control"); tt.wantCacheControl != "" && got != tt.wantCacheControl {
				t.Errorf("Cache-Control: got %q, want %q", got, tt.wantCacheControl)
			}
		})
	}
}

// TestCORSPreflight: only a configured origin gets the preflight answer.
func TestCORSPreflight(t *testing.T) {
	h := newHandler(t)
	for _, tt := range []struct {
		origin   string
		wantCode int
		wantACAO string
	}{
		{"https://shop.example", 204, "https://shop.example"},
		{"http://evil.example", 405, ""},
	} {
		t.Run(tt.origin, func(t *testing.T) {
			req := httptest.NewRequest("OPTIONS", "/v1/orders", nil)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || rec.Header().Get("Access-Control-Allow-Origin") != tt.wantACAO {
				t.Errorf("got %d with Access-Control-Allow-Origin %q, want %d with %q",
					rec.Code, rec.Header().Get("Access-Control-Allow-Origin"), tt.wantCode, tt.wantACAO)
			}
		})
	}
}

// TestCORSAnyOriginRefused: "*" would let every site read the answers.
func TestCORSAnyOriginRefused(t *testing.T) {
	_, err := rest.New(context.Background(), rest.Options{
		Registry: prometheus.NewRegistry(), MetricsHandler: http.NotFoundHandler(),
		CORSOrigins: []string{"https://shop.example", " * "},
	})
	if err == nil {
		t.Fatal("rest.New accepted CORS origin *")
	}
}
