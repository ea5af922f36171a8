package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"google.golang.org/grpc/metadata"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	catalogopb "github.com/carbuild/carbuild/shared/gen/catalogo"
)

// seedByName is each seed car's parts as the earlier system's GetPecas
// answered them (`ORDER BY nome` on an en_US.UTF-8 database): "id nome".
var seedByName = []struct {
	modelo string
	want   []string
}{
	{"Fusca", []string{"6 Capô", "1 Chassi", "4 Farol Dianteiro", "2 Motor 1.6", "5 Parachoque Traseiro", "3 Rodas Aro 14"}},
	{"Civic", []string{"12 Capô Esportivo", "7 Chassi", "10 Farol LED", "8 Motor 2.0 VTEC", "11 Parachoque Esportivo", "9 Rodas Aro 16", "13 Spoiler"}},
	{"Corolla", []string{"19 Capô Aerodinâmico", "14 Chassi", "17 Farol Xenon", "15 Motor 1.8 Hybrid", "18 Parachoque Híbrido", "16 Rodas Aro 15", "20 Sistema Híbrido"}},
}

// TestCompatPartsOrder checks the seed-compatible surfaces list a model's
// parts in the earlier system's order: gRPC catalogo.CatalogoService/GetPecas
// on the catalog, and POST /get-pecas through the gateway, whose answer cache
// must hold the same order (a miss, then a hit). /v1 keeps id order.
func TestCompatPartsOrder(t *testing.T) {
	t.Parallel()
	compat := catalogopb.NewCatalogoServiceClient(dial(t, sys.Addrs.Catalog))
	cache := stackGateway().cache()
	cache.waitLive(t)
	for _, car := range seedByName {
		t.Run(car.modelo, func(t *testing.T) {
			resp, err := compat.GetPecas(ctxT(t), &catalogopb.Carro{Modelo: car.modelo})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range resp.GetPecas() {
				got = append(got, p.GetId()+" "+p.GetNome())
			}
			if diff := cmp.Diff(car.want, got); diff != "" {
				t.Errorf("gRPC GetPecas(%s) (-want +got):\n%s", car.modelo, diff)
			}

			// A field the compat routes ignore makes a cache key no earlier
			// run used, so the first read is a miss and the second a hit,
			// unless a revision watch event came between them (a new
			// revision or a recycled stream legitimately empties or bypasses
			// the cache): quiet reads such a pair again.
			var answers [2]response
			cache.quiet(t, func() {
				body := fmt.Sprintf(`{"modelo":%q,"ano":0,"run":%q}`, strings.ToLower(car.modelo), randomHex(t))
				for i := range answers {
					answers[i] = call(t, "POST", "/get-pecas", body)
				}
			})
			for i, r := range answers {
				if r.status != 200 {
					t.Fatalf("POST /get-pecas answer %d: %d %s", i+1, r.status, r.body)
				}
				var v struct {
					Pecas []struct{ ID, Nome string }
				}
				if err := json.Unmarshal(r.body, &v); err != nil {
					t.Fatalf("answer %d: %v: %s", i+1, err, r.body)
				}
				var got []string
				for _, p := range v.Pecas {
					got = append(got, p.ID+" "+p.Nome)
				}
				if diff := cmp.Diff(car.want, got); diff != "" {
					t.Errorf("POST /get-pecas answer %d (X-Cache %s) (-want +got):\n%s", i+1, r.header.Get("X-Cache"), diff)
				}
			}
			if x0, x1 := answers[0].header.Get("X-Cache"), answers[1].header.Get("X-Cache"); x0 != "miss" || x1 != "hit" {
				t.Errorf("X-Cache %q then %q, want miss then hit", x0, x1)
			}
		})
	}
	// /v1 keeps its documented order, by id (page tokens carry the last id).
	r := call(t, "GET", "/v1/cars/civic/parts", "")
	var v struct{ Parts []struct{ ID string } }
	if err := json.Unmarshal(r.body, &v); err != nil || r.status != 200 {
		t.Fatalf("GET /v1/cars/civic/parts: %d %v %s", r.status, err, r.body)
	}
	var ids []string
	for _, p := range v.Parts {
		ids = append(ids, p.ID)
	}
	if want := []string{"7", "8", "9", "10", "11", "12", "13"}; !cmp.Equal(want, ids) {
		t.Errorf("/v1 civic part ids %v, want %v", ids, want)
	}
}

// TestOrderIdempotencyHeader checks that POST /v1/orders takes its key from
// the Idempotency-Key header as the README says: the header alone keys the
// order, the body's key finds the same order, the same key with another
// basket is a conflict, and a header and body key that differ are refused.
func TestOrderIdempotencyHeader(t *testing.T) {
	t.Parallel()
	key := "hdr-" + randomHex(t)
	const basket = `"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"}`
	orderID := func(r response) string {
		t.Helper()
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		id, _ := r.json(t)["id"].(string)
		if !uuidRE.MatchString(id) {
			t.Fatalf("order id %q is not a UUID: %s", id, r.body)
		}
		return id
	}

	placed := call(t, "POST", "/v1/orders", "{"+basket+"}", "Idempotency-Key", key)
	first := orderID(placed)
	// An anonymous order is read back with its receipt.
	receipt, _ := placed.json(t)["receiptToken"].(string)
	steps := []struct {
		name       string
		body       string
		header     string
		wantStatus int
		wantSame   bool   // the answer is the first order
		wantMsg    string // part of the error message
	}{
		{name: "header again", body: "{" + basket + "}", header: key, wantStatus: 200, wantSame: true},
		{name: "body key", body: `{"idempotencyKey":"` + key + `",` + basket + "}", wantStatus: 200, wantSame: true},
		{name: "same key in both", body: `{"idempotencyKey":"` + key + `",` + basket + "}", header: key, wantStatus: 200, wantSame: true},
		{name: "header, another basket", body: `{"items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"802000"}}`,
			header: key, wantStatus: 409, wantMsg: "idempotency key reused with a different order"},
		{name: "header and body differ", body: `{"idempotencyKey":"` + key + `-other",` + basket + "}", header: key, wantStatus: 400,
			wantMsg: "the Idempotency-Key header"},
		{name: "header too short", body: "{" + basket + "}", header: "short", wantStatus: 400, wantMsg: "idempotency key must be 8-128 characters, got 5"},
	}
	for _, s := range steps {
		var headers []string
		if s.header != "" {
			headers = []string{"Idempotency-Key", s.header}
		}
		r := call(t, "POST", "/v1/orders", s.body, headers...)
		if r.status != s.wantStatus {
			t.Errorf("%s: status %d, want %d: %s", s.name, r.status, s.wantStatus, r.body)
			continue
		}
		if s.wantSame {
			if id := orderID(r); id != first {
				t.Errorf("%s: order %s, want the first order %s", s.name, id, first)
			}
			continue
		}
		if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, s.wantMsg) {
			t.Errorf("%s: message %q, want it to contain %q", s.name, msg, s.wantMsg)
		}
	}

	// The order stored under the header's key is the one the body's key
	// finds over gRPC too: the key really is the order's key.
	ctx := metadata.AppendToOutgoingContext(ctxT(t), "order-receipt", receipt)
	got, err := pricingv1.NewPricingServiceClient(dial(t, sys.Addrs.Pricing)).GetOrder(ctx, &pricingv1.GetOrderRequest{OrderId: first})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetTotal().GetMinorUnits() != 874500 {
		t.Errorf("stored order total %d, want 874500", got.GetTotal().GetMinorUnits())
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
