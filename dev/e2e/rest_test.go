package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("response is not a JSON object: %v\n%s", err, r.body)
	}
	return v
}

func call(t *testing.T, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, sys.GatewayURL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// num reads a JSON number at a dotted path ("preco", "total.minorUnits").
func field(t *testing.T, v any, path string) any {
	t.Helper()
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			t.Fatalf("field %q: not an object at %q", path, k)
		}
		v = m[k]
	}
	return v
}

func TestRESTRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		headers    []string
		wantStatus int
		check      func(t *testing.T, r response)
	}{
		{name: "compat health", method: "GET", path: "/health", wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			if v["status"] != "healthy" || field(t, v, "services.catalog") != "SERVING" || field(t, v, "services.pricing") != "SERVING" {
				t.Errorf("health = %s", r.body)
			}
		}},
		{name: "healthz", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "readyz", method: "GET", path: "/readyz", wantStatus: 200, check: func(t *testing.T, r response) {
			if r.json(t)["status"] != "ready" {
				t.Errorf("readyz = %s", r.body)
			}
		}},
		{name: "openapi", method: "GET", path: "/openapi.json", wantStatus: 200, check: func(t *testing.T, r response) {
			paths, _ := r.json(t)["paths"].(map[string]any)
			for _, p := range []string{"/v1/cars", "/v1/cars/{carId}/parts", "/v1/parts:batchGet", "/v1/quotes", "/v1/orders", "/v1/orders/{orderId}", "/get-pecas", "/calcular", "/pagar", "/health"} {
				if _, ok := paths[p]; !ok {
					t.Errorf("openapi.json lacks path %s", p)
				}
			}
		}},
		{name: "storefront page", method: "GET", path: "/", wantStatus: 200, check: func(t *testing.T, r response) {
			if !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Errorf("content type %q", r.header.Get("Content-Type"))
			}
		}},
		{name: "v1 list cars", method: "GET", path: "/v1/cars", wantStatus: 200, check: func(t *testing.T, r response) {
			cars := r.json(t)["cars"].([]any)
			if len(cars) != 3 || field(t, cars[0], "id") != "civic" || field(t, cars[0], "firstYear") != 2023.0 {
				t.Errorf("cars = %s", r.body)
			}
		}},
		{name: "v1 list parts paginated", method: "GET", path: "/v1/cars/Civic/parts?page_size=5&year=2023", wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			parts := v["parts"].([]any)
			if len(parts) != 5 || v["nextPageToken"] == "" {
				t.Fatalf("first page = %s", r.body)
			}
			p0 := parts[0]
			if field(t, p0, "id") != "7" || field(t, p0, "category") != "PART_CATEGORY_CHASSIS" || field(t, p0, "price.minorUnits") != "800000" || field(t, p0, "price.currencyCode") != "BRL" {
				t.Errorf("first part = %v", p0)
			}
			next := call(t, "GET", "/v1/cars/civic/parts?page_size=5&page_token="+v["nextPageToken"].(string), "")
			v2 := next.json(t)
			if next.status != 200 || len(v2["parts"].([]any)) != 2 || v2["nextPageToken"] != "" {
				t.Errorf("second page = %d %s", next.status, next.body)
			}
		}},
		{name: "v1 batch get parts", method: "GET", path: "/v1/parts:batchGet?ids=14&ids=1", wantStatus: 200, check: func(t *testing.T, r response) {
			parts := r.json(t)["parts"].([]any)
			if len(parts) != 2 || field(t, parts[0], "id") != "14" || field(t, parts[1], "name") != "Chassi" {
				t.Errorf("batchGet = %s", r.body)
			}
		}},
		{name: "v1 quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"7","quantity":1},{"part_id":"10","quantity":2}]}`, wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			if field(t, v, "subtotal.minorUnits") != "870000" || field(t, v, "shipping.minorUnits") != "4500" || field(t, v, "total.minorUnits") != "874500" || v["freeShipping"] != false {
				t.Errorf("quote = %s", r.body)
			}
		}},
		{name: "v1 quote free shipping", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"7","quantity":1},{"partId":"8","quantity":1}]}`, wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			if field(t, v, "shipping.minorUnits") != "0" || v["freeShipping"] != true {
				t.Errorf("quote = %s", r.body)
			}
		}},
		{name: "compat get-pecas", method: "POST", path: "/get-pecas", body: `{"modelo":"Civic","ano":2023}`, wantStatus: 200, check: func(t *testing.T, r response) {
			// By name, as the earlier system's ORDER BY nome answered.
			pecas := r.json(t)["pecas"].([]any)
			if len(pecas) != 7 || field(t, pecas[0], "id") != "12" || field(t, pecas[1], "id") != "7" || field(t, pecas[1], "nome") != "Chassi" || field(t, pecas[1], "valor") != 8000.0 {
				t.Errorf("pecas = %s", r.body)
			}
		}},
		{name: "compat get-pecas lowercase and unknown field", method: "POST", path: "/get-pecas", body: `{"modelo":"corolla","ano":2020,"cor":"azul"}`, wantStatus: 200, check: func(t *testing.T, r response) {
			if n := len(r.json(t)["pecas"].([]any)); n != 7 {
				t.Errorf("got %d pecas, want 7", n)
			}
		}},
		{name: "compat get-pecas unknown model", method: "POST", path: "/get-pecas", body: `{"modelo":"Gol","ano":2020}`, wantStatus: 200, check: func(t *testing.T, r response) {
			if n := len(r.json(t)["pecas"].([]any)); n != 0 {
				t.Errorf("got %d pecas, want 0", n)
			}
		}},
		{name: "compat calcular", method: "POST", path: "/calcular", body: `{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}]}`, wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			if v["preco"] != 8000.0 || v["frete"] != 20.0 || v["total"] != 8020.0 {
				t.Errorf("preco = %s", r.body)
			}
		}},
		{name: "compat calcular ignores a tampered valor", method: "POST", path: "/calcular", body: `{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":0.01},"quantidade":1}]}`, wantStatus: 200, check: func(t *testing.T, r response) {
			if v := r.json(t); v["total"] != 8020.0 {
				t.Errorf("tampered valor changed the price: %s", r.body)
			}
		}},
		{name: "compat calcular free shipping is 0", method: "POST", path: "/calcular", body: `{"itens":[{"peca":{"id":"14"},"quantidade":1},{"peca":{"id":"15"},"quantidade":1}]}`, wantStatus: 200, check: func(t *testing.T, r response) {
			if v := r.json(t); v["frete"] != 0.0 || v["total"] != 14500.0 {
				t.Errorf("preco = %s", r.body)
			}
		}},
		{name: "compat pagar", method: "POST", path: "/pagar", body: `{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}],"valor_total":8020}`, wantStatus: 200, check: func(t *testing.T, r response) {
			v := r.json(t)
			if v["status"] != "CONFIRMADO" || v["valorTotal"] != 8020.0 || v["subtotal"] != 8000.0 || v["frete"] != 20.0 || len(v["pedidoId"].(string)) != 36 {
				t.Errorf("compra = %s", r.body)
			}
			if _, err := timeParse(v["dataPedido"].(string)); err != nil {
				t.Errorf("dataPedido %q is not RFC 3339: %v", v["dataPedido"], err)
			}
			items := v["itensComprados"].([]any)
			if len(items) != 1 || field(t, items[0], "peca.nome") != "Chassi" || field(t, items[0], "quantidade") != 1.0 {
				t.Errorf("itensComprados = %v", items)
			}
			if n := countOrders(t, "id = $1", v["pedidoId"]); n != 1 {
				t.Errorf("order %v stored %d times, want 1", v["pedidoId"], n)
			}
		}},
		{name: "compat pagar camelCase valorTotal", method: "POST", path: "/pagar", body: `{"itens":[{"peca":{"id":"10"},"quantidade":2}],"valorTotal":730}`, wantStatus: 200},

		// Bad input: 4xx with a reason, never a 500.
		{name: "v1 unknown model is 404", method: "GET", path: "/v1/cars/gol/parts", wantStatus: 404, check: wantMessage("car \"gol\" not found")},
		{name: "v1 year outside the model is 400", method: "GET", path: "/v1/cars/civic/parts?year=1999", wantStatus: 400, check: wantMessage("year 1999")},
		{name: "v1 page size too large", method: "GET", path: "/v1/cars/civic/parts?page_size=1000", wantStatus: 400, check: wantMessage("page_size")},
		{name: "v1 bad page token", method: "GET", path: "/v1/cars/civic/parts?page_token=zzz", wantStatus: 400, check: wantMessage("page_token")},
		{name: "v1 unknown part in batchGet", method: "GET", path: "/v1/parts:batchGet?ids=1&ids=999", wantStatus: 404, check: wantMessage("part 999 not found")},
		{name: "v1 two chassis is 400", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"7","quantity":2}]}`, wantStatus: 400, check: wantMessage("only one chassis")},
		{name: "compat two chassis is 400", method: "POST", path: "/calcular", body: `{"itens":[{"peca":{"id":"1"},"quantidade":1},{"peca":{"id":"7"},"quantidade":1}]}`, wantStatus: 400, check: wantMessage("only one chassis")},
		{name: "v1 negative quantity", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"4","quantity":-1}]}`, wantStatus: 400, check: wantMessage("quantity")},
		{name: "v1 unknown part in quote", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"999","quantity":1}]}`, wantStatus: 404},
		{name: "v1 non-numeric part id", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"1 OR 1=1","quantity":1}]}`, wantStatus: 400},
		{name: "v1 malformed JSON", method: "POST", path: "/v1/quotes", body: `{"items":[`, wantStatus: 400},
		{name: "compat malformed JSON", method: "POST", path: "/calcular", body: `not json`, wantStatus: 400},
		{name: "v1 unknown field", method: "POST", path: "/v1/quotes", body: `{"itemz":[]}`, wantStatus: 400, check: wantMessage("unknown field")},
		{name: "v1 wrong type", method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"7","quantity":"one"}]}`, wantStatus: 400},
		{name: "compat wrong valor_total is refused", method: "POST", path: "/pagar", body: `{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8000}`, wantStatus: 400, check: wantMessage("total changed")},
		{name: "v1 wrong expected total is refused", method: "POST", path: "/v1/orders", body: `{"idempotencyKey":"e2e-wrong-total","items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"1"}}`, wantStatus: 400, check: wantMessage("total changed")},
		{name: "v1 order without key", method: "POST", path: "/v1/orders", body: `{"items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"802000"}}`, wantStatus: 400, check: wantMessage("idempotency key")},
		{name: "v1 bad order id", method: "GET", path: "/v1/orders/nope", wantStatus: 400},
		{name: "v1 unknown order", method: "GET", path: "/v1/orders/00000000-0000-4000-8000-000000000000", wantStatus: 404},
		{name: "unknown v1 route", method: "GET", path: "/v1/nothing", wantStatus: 404},
		{name: "wrong method", method: "GET", path: "/calcular", wantStatus: 405},
		{name: "oversized body is 413", method: "POST", path: "/v1/quotes", body: `{"items":[` + strings.Repeat(`{"partId":"4","quantity":1},`, 5000) + `{"partId":"4","quantity":1}]}`, wantStatus: 413},
		// CORS is empty by default (the storefront is same-origin): a
		// preflight from another site gets no CORS answer.
		{name: "CORS preflight from another site", method: "OPTIONS", path: "/v1/quotes", headers: []string{"Origin", "http://example.test", "Access-Control-Request-Method", "POST"}, wantStatus: 405, check: func(t *testing.T, r response) {
			if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
				t.Errorf("Access-Control-Allow-Origin %q, want none", got)
			}
		}},
		// The cross-site "simple" POST of issue #15 (no preflight) places no order.
		{name: "cross-site text/plain order is 415", method: "POST", path: "/pagar", body: `{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}`,
			headers: []string{"Content-Type", "text/plain", "Origin", "http://evil.example"}, wantStatus: 415, check: func(t *testing.T, r response) {
				if got := r.header.Get("Access-Control-Allow-Origin"); got != "" {
					t.Errorf("Access-Control-Allow-Origin %q, want none", got)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := call(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.wantStatus {
				t.Fatalf("%s %s = %d, want %d\n%s", tt.method, tt.path, r.status, tt.wantStatus, r.body)
			}
			if r.status >= 400 && tt.method != "OPTIONS" {
				v := r.json(t)
				if v["code"] != float64(tt.wantStatus) || v["message"] == "" || v["status"] == "" {
					t.Errorf("error body %s lacks code/status/message", r.body)
				}
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func wantMessage(sub string) func(t *testing.T, r response) {
	return func(t *testing.T, r response) {
		t.Helper()
		if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, sub) {
			t.Errorf("message %q does not contain %q", msg, sub)
		}
	}
}

func TestV1OrderIsIdempotent(t *testing.T) {
	t.Parallel()
	quote := call(t, "POST", "/v1/quotes", `{"items":[{"partId":"14","quantity":1},{"partId":"17","quantity":2}]}`)
	if quote.status != 200 {
		t.Fatalf("quote = %d %s", quote.status, quote.body)
	}
	total := field(t, quote.json(t), "total.minorUnits").(string)
	body := fmt.Sprintf(`{"idempotencyKey":"e2e-idem-0001","items":[{"partId":"14","quantity":1},{"partId":"17","quantity":2}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"%s"}}`, total)
	first := call(t, "POST", "/v1/orders", body)
	if first.status != 200 {
		t.Fatalf("place = %d %s", first.status, first.body)
	}
	order := first.json(t)
	if order["status"] != "ORDER_STATUS_CONFIRMED" || field(t, order, "total.minorUnits") != total {
		t.Errorf("order = %s", first.body)
	}
	again := call(t, "POST", "/v1/orders", body)
	if again.status != 200 || again.json(t)["id"] != order["id"] {
		t.Fatalf("retry = %d %s, want the same order %v", again.status, again.body, order["id"])
	}
	if n := countOrders(t, "idempotency_key = $1", "e2e-idem-0001"); n != 1 {
		t.Errorf("key stored %d times, want 1", n)
	}
	other := strings.Replace(body, `"quantity":2`, `"quantity":1`, 1)
	conflict := call(t, "POST", "/v1/orders", other)
	if conflict.status != 409 {
		t.Errorf("key reused with another body = %d %s, want 409", conflict.status, conflict.body)
	}
	// Anonymous: the order reads back only with the receipt token of its answer.
	got := call(t, "GET", "/v1/orders/"+order["id"].(string), "", "Order-Receipt", order["receiptToken"].(string))
	if got.status != 200 || got.json(t)["id"] != order["id"] || len(got.json(t)["lines"].([]any)) != 2 {
		t.Errorf("get order = %d %s", got.status, got.body)
	}
}

func TestCompatPagarWithIdempotencyKeyHeader(t *testing.T) {
	t.Parallel()
	body := `{"itens":[{"peca":{"id":"4"},"quantidade":1}],"valor_total":170}`
	a := call(t, "POST", "/pagar", body, "Idempotency-Key", "e2e-compat-header-1")
	b := call(t, "POST", "/pagar", body, "Idempotency-Key", "e2e-compat-header-1")
	if a.status != 200 || b.status != 200 || a.json(t)["pedidoId"] != b.json(t)["pedidoId"] {
		t.Fatalf("pagar twice with one key = %d %s / %d %s; want one order", a.status, a.body, b.status, b.body)
	}
	if n := countOrders(t, "idempotency_key = $1", "e2e-compat-header-1"); n != 1 {
		t.Errorf("stored %d times, want 1", n)
	}
}

// TestGatewayOperationsPort: the gateway's metrics and pprof are on its
// private operations listener, not on the public port.
func TestGatewayOperationsPort(t *testing.T) {
	ops := "http://" + sys.Addrs.GatewayMetrics
	r := callAt(t, ops, "GET", "/metrics", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET %s/metrics = %d, want 200", ops, r.status)
	}
	for _, m := range []string{"grpc_client_handled_total", "http_requests_total", "carbuild_build_info", "go_goroutines"} {
		if !bytes.Contains(r.body, []byte(m)) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/heap"} {
		if r := call(t, "GET", path, ""); r.status != http.StatusNotFound {
			t.Errorf("public port: GET %s = %d, want 404", path, r.status)
		}
	}
}
