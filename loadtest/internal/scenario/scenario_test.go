package scenario

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/carbuild/carbuild/loadtest/internal/reference"
)

const civic = `{"pecas":[{"id":"12","nome":"Capô Esportivo","valor":600},{"id":"7","nome":"Chassi","valor":8000},{"id":"10","nome":"Farol LED","valor":350},{"id":"8","nome":"Motor 2.0 VTEC","valor":6500},{"id":"11","nome":"Parachoque Esportivo","valor":450},{"id":"9","nome":"Rodas Aro 16","valor":1200},{"id":"13","nome":"Spoiler","valor":300}]}`

// civicByID is the order /get-pecas answered before it kept the earlier
// system's (by name).
const civicByID = `{"pecas":[{"id":"7","nome":"Chassi","valor":8000},{"id":"8","nome":"Motor 2.0 VTEC","valor":6500},{"id":"9","nome":"Rodas Aro 16","valor":1200},{"id":"10","nome":"Farol LED","valor":350},{"id":"11","nome":"Parachoque Esportivo","valor":450},{"id":"12","nome":"Capô Esportivo","valor":600},{"id":"13","nome":"Spoiler","valor":300}]}`

func TestGetPecasCheck(t *testing.T) {
	t.Parallel()
	sc := GetPecas("http://x")
	tests := []struct {
		name    string
		code    uint16
		body    string
		wantErr string
	}{
		{"the seed", 200, civic, ""},
		{"wrong price", 200, strings.Replace(civic, "8000", "8000.5", 1), "peca 1"},
		{"id order", 200, civicByID, "peca 0"},
		{"missing part", 200, strings.Replace(civic, `,{"id":"13","nome":"Spoiler","valor":300}`, "", 1), "6 pecas, want 7"},
		{"another car's part", 200, strings.Replace(civic, `"id":"9"`, `"id":"3"`, 1), "peca 5"},
		{"not JSON", 200, "<html>", "not JSON"},
		{"server error", 500, `{"code":500}`, "status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := sc.Check(&vegeta.Result{Code: tt.code, Body: []byte(tt.body), URL: "http://x/get-pecas"})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Check() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Check() = %v, want an error with %q", err, tt.wantErr)
			}
		})
	}
}

func TestReferenceAnswersTheSeed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(reference.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/get-pecas", "application/json", strings.NewReader(`{"modelo":"civic","ano":2023}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if err := checkPecas(body, "civic"); err != nil {
		t.Errorf("reference answer: %v", err)
	}
}

func priced(lines []v1Line, sub, ship, total int64) *v1Priced {
	m := func(v int64) Money { return Money{CurrencyCode: "BRL", MinorUnits: fmt.Sprint(v)} }
	return &v1Priced{Lines: lines, Subtotal: m(sub), Shipping: m(ship), Total: m(total)}
}

func TestCheckPriced(t *testing.T) {
	t.Parallel()
	b := DefaultBaskets()[1] // part 10 (Farol LED, R$ 350) x2: shipping R$ 30
	m := func(v int64) Money { return Money{CurrencyCode: "BRL", MinorUnits: fmt.Sprint(v)} }
	good := []v1Line{{PartID: "10", Name: "Farol LED", Quantity: 2, UnitPrice: m(35000), LineTotal: m(70000)}}
	if err := checkPriced(priced(good, 70000, 3000, 73000), b); err != nil {
		t.Errorf("correct quote: %v", err)
	}
	if err := checkPriced(priced(good, 70000, 2000, 72000), b); err == nil {
		t.Error("minimum shipping instead of per-unit: want an error")
	}
	bad := []v1Line{{PartID: "10", Name: "Farol LED", Quantity: 2, UnitPrice: m(35000), LineTotal: m(35000)}}
	if err := checkPriced(priced(bad, 70000, 3000, 73000), b); err == nil {
		t.Error("lineTotal != unit x quantity: want an error")
	}
	usd := priced(good, 70000, 3000, 73000)
	usd.Total.CurrencyCode = "USD"
	if err := checkPriced(usd, b); err == nil {
		t.Error("USD total: want an error")
	}
	// Free shipping: proto3 JSON omits the zero minorUnits.
	free := DefaultBaskets()[2] // chassis + engine of the civic
	lines := []v1Line{
		{PartID: "7", Name: "Chassi", Quantity: 1, UnitPrice: m(800000), LineTotal: m(800000)},
		{PartID: "8", Name: "Motor 2.0 VTEC", Quantity: 1, UnitPrice: m(650000), LineTotal: m(650000)},
	}
	q := priced(lines, 1450000, 0, 1450000)
	q.Shipping = Money{CurrencyCode: "BRL"}
	if err := checkPriced(q, free); err != nil {
		t.Errorf("free shipping with omitted zero: %v", err)
	}
}

func TestMixedTargetsRoundRobin(t *testing.T) {
	t.Parallel()
	baskets := DefaultBaskets()
	orders := NewOrders("bench-test-")
	sc := Mixed("mixed", "http://x", baskets, orders, nil)
	seen := map[string]int{}
	keys := map[string]bool{}
	for range 40 {
		var tgt vegeta.Target
		if err := sc.Targeter(&tgt); err != nil {
			t.Fatal(err)
		}
		seen[sc.Kind(tgt.URL)]++
		if sc.Kind(tgt.URL) == KindOrder {
			var body struct {
				IdempotencyKey string `json:"idempotencyKey"`
			}
			if err := json.Unmarshal(tgt.Body, &body); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(body.IdempotencyKey, "bench-test-") || keys[body.IdempotencyKey] {
				t.Errorf("idempotency key %q: want a fresh key with the run's prefix", body.IdempotencyKey)
			}
			keys[body.IdempotencyKey] = true
		}
	}
	for _, k := range []string{KindHealth, KindParts, KindQuote, KindOrder} {
		if seen[k] != 10 {
			t.Errorf("%s sent %d times of 40, want 10 (equal weight)", k, seen[k])
		}
	}
}

func TestValidatedBodiesStillChecked(t *testing.T) {
	t.Parallel()
	sc := GetPecas("http://x")
	good := &vegeta.Result{Code: 200, Body: []byte(civic), URL: "http://x/get-pecas"}
	for range 3 {
		if err := sc.Check(good); err != nil {
			t.Fatalf("good body: %v", err)
		}
	}
	bad := &vegeta.Result{Code: 200, Body: []byte(strings.Replace(civic, "8000", "7000", 1)), URL: "http://x/get-pecas"}
	if err := sc.Check(bad); err == nil {
		t.Error("a different, wrong body after good ones: want an error")
	}
	if err := sc.Check(&vegeta.Result{Code: 503, Body: []byte(civic), URL: "http://x/get-pecas"}); err == nil {
		t.Error("a validated body with status 503: want an error")
	}
}

func BenchmarkGetPecasCheck(b *testing.B) {
	sc := GetPecas("http://x")
	r := &vegeta.Result{Code: 200, Body: []byte(civic), URL: "http://x/get-pecas"}
	for b.Loop() {
		if err := sc.Check(r); err != nil {
			b.Fatal(err)
		}
	}
}
