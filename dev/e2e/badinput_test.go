package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestBadInput sends hostile and malformed requests through the running
// gateway: unknown fields, wrong types, out-of-range and huge numbers,
// unicode and case variants, SQL-looking text, over-long strings, too many
// items, page limits. Each gets the expected 4xx with the JSON error body
// and a reason (or, where the earlier API was lenient, a normal 200) —
// never a 5xx — and the catalog is intact afterwards.
func TestBadInput(t *testing.T) {
	items := func(n int, distinct bool) string {
		parts := make([]string, n)
		for i := range parts {
			id := 2
			if distinct {
				id = 1000 + i
			}
			parts[i] = fmt.Sprintf(`{"partId":"%d","quantity":1}`, id)
		}
		return `{"items":[` + strings.Join(parts, ",") + `]}`
	}
	order := func(extra string) string {
		return `{"idempotencyKey":"bad-input-0001","items":[{"partId":"8","quantity":1}]` + extra + `}`
	}
	long := strings.Repeat("A", 10_000)
	tests := []struct {
		name, method, path, body string
		headers                  []string
		want                     int
		reason                   string // a substring of the message
	}{
		// Unknown fields: refused on /v1, ignored on the seed-compatible routes (as FastAPI did).
		{"v1 unknown field", "POST", "/v1/quotes", `{"items":[],"coupon":"FREE"}`, nil, 400, `unknown field "coupon"`},
		{"v1 unknown nested field", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":1,"price":1}]}`, nil, 400, `unknown field "price"`},
		{"compat unknown field ignored", "POST", "/calcular", `{"itens":[{"peca":{"id":"8"},"quantidade":1}],"cupom":"X"}`, nil, 200, ""},

		// Wrong types and shapes.
		{"not JSON", "POST", "/v1/quotes", `items=8`, nil, 400, "invalid"},
		{"JSON array", "POST", "/v1/quotes", `[{"partId":"8"}]`, nil, 400, ""},
		{"items is an object", "POST", "/v1/quotes", `{"items":{"partId":"8"}}`, nil, 400, ""},
		{"quantity is text", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":"one"}]}`, nil, 400, "quantity"},
		{"quantity is fractional", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":1.5}]}`, nil, 400, ""},
		{"part id is an object", "POST", "/v1/quotes", `{"items":[{"partId":{"id":8},"quantity":1}]}`, nil, 400, ""},
		{"compat quantidade is text", "POST", "/calcular", `{"itens":[{"peca":{"id":"8"},"quantidade":"1x"}]}`, nil, 400, ""},
		{"compat ano is text", "POST", "/get-pecas", `{"modelo":"Civic","ano":"dois mil"}`, nil, 400, ""},
		{"expected total is a float", "POST", "/v1/orders", order(`,"expectedTotal":{"currencyCode":"BRL","minorUnits":6520.5}`), nil, 400, ""},
		{"year is text", "GET", "/v1/cars/civic/parts?year=abc", "", nil, 400, "year"},
		{"empty body", "POST", "/v1/quotes", ``, nil, 200, ""}, // an empty basket quotes to zero

		// Negative, zero and huge quantities.
		{"negative quantity", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":-1}]}`, nil, 400, "quantity"},
		{"zero quantity", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":0}]}`, nil, 400, "quantity"},
		{"quantity above the limit", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":100}]}`, nil, 400, "between 1 and 99"},
		{"quantity beyond int32", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":99999999999}]}`, nil, 400, ""},
		{"repeated parts merged past the limit", "POST", "/v1/quotes", `{"items":[{"partId":"8","quantity":60},{"partId":"8","quantity":60}]}`, nil, 400, "between 1 and 99"},
		{"compat negative quantity", "POST", "/calcular", `{"itens":[{"peca":{"id":"8"},"quantidade":-5}]}`, nil, 400, "quantity"},
		{"negative part id", "POST", "/v1/quotes", `{"items":[{"partId":"-8","quantity":1}]}`, nil, 400, "part id"},
		{"huge part id", "POST", "/v1/quotes", `{"items":[{"partId":"99999999999999999999","quantity":1}]}`, nil, 400, "part id"},
		{"unknown part", "POST", "/v1/quotes", `{"items":[{"partId":"999","quantity":1}]}`, nil, 404, "999"},
		{"two chassis", "POST", "/v1/quotes", `{"items":[{"partId":"1","quantity":1},{"partId":"7","quantity":1}]}`, nil, 400, "chassis"},
		{"compat NaN total", "POST", "/pagar", `{"itens":[{"peca":{"id":"8"},"quantidade":1}],"valor_total":"NaN"}`, nil, 400, "valor_total"},
		{"compat infinite total", "POST", "/pagar", `{"itens":[{"peca":{"id":"8"},"quantidade":1}],"valor_total":"Infinity"}`, nil, 400, "valor_total"},
		{"compat total beyond float", "POST", "/pagar", `{"itens":[{"peca":{"id":"8"},"quantidade":1}],"valor_total":1e400}`, nil, 400, ""},
		{"negative expected total", "POST", "/v1/orders", order(`,"expectedTotal":{"currencyCode":"BRL","minorUnits":"-1"}`), nil, 400, "total"},
		{"other currency", "POST", "/v1/orders", order(`,"expectedTotal":{"currencyCode":"USD","minorUnits":"652000"}`), nil, 400, "BRL"},
		{"missing expected total", "POST", "/v1/orders", order(``), nil, 400, "expected_total"},

		// Unicode and case variants of model names.
		{"model upper case", "POST", "/get-pecas", `{"modelo":"CIVIC","ano":2023}`, nil, 200, ""},
		{"model with spaces", "POST", "/get-pecas", `{"modelo":"  civic  "}`, nil, 200, ""},
		{"model with accent", "POST", "/get-pecas", `{"modelo":"Cívic"}`, nil, 200, ""}, // unknown: empty list
		{"model dotted I", "POST", "/get-pecas", `{"modelo":"CİVİC"}`, nil, 200, ""},    // unknown: empty list
		{"model empty", "POST", "/get-pecas", `{"modelo":""}`, nil, 400, "model"},
		{"model emoji", "POST", "/get-pecas", `{"modelo":"🚗"}`, nil, 200, ""},
		{"model invalid UTF-8", "POST", "/get-pecas", "{\"modelo\":\"\xff\xfe\"}", nil, 400, "UTF-8"},
		{"v1 car upper case", "GET", "/v1/cars/COROLLA/parts?page_size=1", "", nil, 200, ""},
		{"v1 car with accent", "GET", "/v1/cars/c%C3%ADvic/parts", "", nil, 404, "not found"},
		{"v1 car not UTF-8", "GET", "/v1/cars/%ff/parts", "", nil, 400, "UTF-8"},
		{"v1 car NUL", "GET", "/v1/cars/civic%00/parts", "", nil, 400, "control characters"},
		{"model NUL", "POST", "/get-pecas", `{"modelo":"civic\u0000"}`, nil, 400, "control characters"},
		{"model newline", "POST", "/get-pecas", `{"modelo":"civic\nfusca"}`, nil, 400, "control characters"},

		// SQL-looking input is data, never SQL.
		{"sql in car id", "GET", "/v1/cars/civic'%20OR%20'1'='1/parts", "", nil, 404, "not found"},
		{"sql in model", "POST", "/get-pecas", `{"modelo":"Civic' OR '1'='1"}`, nil, 200, ""},
		{"sql in model, drop", "POST", "/get-pecas", `{"modelo":"x'; DROP TABLE catalog.parts; --"}`, nil, 200, ""},
		{"sql in part id", "POST", "/v1/quotes", `{"items":[{"partId":"8 OR 1=1","quantity":1}]}`, nil, 400, "part id"},
		{"sql in batch ids", "GET", "/v1/parts:batchGet?ids=1%3BDELETE%20FROM%20catalog.parts", "", nil, 400, "part id"},
		{"raw semicolon in query", "GET", "/v1/parts:batchGet?ids=1;DELETE%20FROM%20catalog.parts", "", nil, 400, "semicolon"},
		{"sql in order id", "GET", "/v1/orders/'%20OR%201=1--", "", nil, 400, "order id"},
		{"sql in idempotency key", "POST", "/v1/orders", `{"idempotencyKey":"k'); DELETE FROM orders.orders; --","items":[{"partId":"999","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"1"}}`, nil, 400, "idempotency key"},
		{"sql in page token", "GET", "/v1/cars/civic/parts?page_token=%27%20OR%201%3D1%20--", "", nil, 400, "page_token"},

		// Over-long strings.
		{"long model", "POST", "/get-pecas", `{"modelo":"` + long + `"}`, nil, 400, "longer than"},
		{"long car id", "GET", "/v1/cars/" + long[:2000] + "/parts", "", nil, 400, "longer than"},
		{"long part id", "POST", "/v1/quotes", `{"items":[{"partId":"` + strings.Repeat("9", 5000) + `","quantity":1}]}`, nil, 400, "part id"},
		{"long idempotency key", "POST", "/v1/orders", `{"idempotencyKey":"` + long[:200] + `","items":[{"partId":"8","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"652000"}}`, nil, 400, "8-128"},
		{"short idempotency key", "POST", "/v1/orders", `{"idempotencyKey":"k","items":[{"partId":"8","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"652000"}}`, nil, 400, "8-128"},
		{"key header not ASCII", "POST", "/pagar", `{"itens":[{"peca":{"id":"8"},"quantidade":1}],"valor_total":6520}`, []string{"Idempotency-Key", "chave-é-0001"}, 400, "ASCII"},
		{"long order id", "GET", "/v1/orders/" + long[:1000], "", nil, 400, "order id"},
		{"body above 64 KiB", "POST", "/v1/quotes", `{"items":[],"pad":"` + strings.Repeat("x", 70_000) + `"}`, nil, 413, "larger than"},

		// Too many items, page limits.
		{"201 items", "POST", "/v1/quotes", items(201, false), nil, 400, "at most 200 items"},
		{"51 distinct parts", "POST", "/v1/quotes", items(51, true), nil, 400, "at most 50 different parts"},
		{"compat 201 items", "POST", "/calcular", `{"itens":[` + strings.TrimSuffix(strings.Repeat(`{"peca":{"id":"2"},"quantidade":1},`, 201), ",") + `]}`, nil, 400, "at most 200 items"},
		{"101 batch ids", "GET", "/v1/parts:batchGet?ids=" + strings.TrimSuffix(strings.Repeat("1&ids=", 101), "&ids="), "", nil, 400, "at most 100 ids"},
		{"no batch ids", "GET", "/v1/parts:batchGet", "", nil, 400, "ids"},
		{"page size too big", "GET", "/v1/cars/civic/parts?page_size=101", "", nil, 400, "page_size"},
		{"page size negative", "GET", "/v1/cars/civic/parts?page_size=-1", "", nil, 400, "page_size"},
		{"page size beyond int32", "GET", "/v1/cars/civic/parts?page_size=99999999999", "", nil, 400, "page_size"},
		{"page size zero is the default", "GET", "/v1/cars/civic/parts?page_size=0", "", nil, 200, ""},
		{"page token of another car", "GET", "/v1/cars/fusca/parts?page_token=Y2l2aWM6OQ", "", nil, 400, "page_token"},
		{"year not a model year", "GET", "/v1/cars/civic/parts?year=1800", "", nil, 400, "model year"},
		{"repeated year", "GET", "/v1/cars/civic/parts?year=2023&year=2024", "", nil, 400, "year"},

		// Routes and methods.
		{"GET on a POST route", "GET", "/v1/quotes", "", nil, 405, ""},
		{"unknown v1 route", "GET", "/v1/carts", "", nil, 404, ""},
		{"DELETE an order", "DELETE", "/v1/orders/6c1f3a2e-0000-4000-8000-000000000001", "", nil, 405, ""},
	}
	t.Run("cases", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				r := call(t, tt.method, tt.path, tt.body, tt.headers...)
				if r.status >= 500 {
					t.Fatalf("got %d, never want a 5xx: %s", r.status, r.body)
				}
				if r.status != tt.want {
					t.Fatalf("got %d, want %d: %s", r.status, tt.want, r.body)
				}
				if r.status < 400 {
					return
				}
				var e struct {
					Code    int    `json:"code"`
					Status  string `json:"status"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(r.body, &e); err != nil || e.Code != r.status || e.Status == "" || e.Message == "" {
					t.Fatalf("error body %q: want {code, status, message}", r.body)
				}
				if !strings.Contains(e.Message, tt.reason) {
					t.Errorf("message %q does not say %q", e.Message, tt.reason)
				}
				if len(e.Message) > 300 {
					t.Errorf("message of %d bytes echoes the input back", len(e.Message))
				}
			})
		}
	})
	t.Run("catalog intact", func(t *testing.T) {
		r := call(t, "GET", "/v1/parts:batchGet?ids=1&ids=20", "")
		if r.status != http.StatusOK || !strings.Contains(string(r.body), "Sistema Híbrido") {
			t.Fatalf("after the bad input: %d %s", r.status, r.body)
		}
		r = call(t, "POST", "/get-pecas", `{"modelo":"CIVIC"}`)
		if got := strings.Count(string(r.body), `"nome"`); got != 7 {
			t.Errorf("CIVIC: %d parts, want 7: %s", got, r.body)
		}
	})
}
