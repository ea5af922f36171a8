package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// Callers of the authorization table: no token, three kinds of bad token,
// two shoppers and an operator.
const (
	noToken      = "no token"
	expired      = "expired"
	wrongAud     = "wrong audience"
	badSignature = "bad signature"
	shopperA     = "shopper"
	shopperB     = "other shopper"
	operator     = "operator"
)

var callers = []string{noToken, expired, wrongAud, badSignature, shopperA, shopperB, operator}

// Subjects of the callers with a valid token.
const (
	subjectA  = "e2e-alice"
	subjectB  = "e2e-bob"
	subjectOp = "e2e-olga"
)

var (
	tokensOnce sync.Once
	tokensMap  map[string]string
)

// tokens signs one token per caller with the stack's dev issuer.
func tokens(t *testing.T) map[string]string {
	t.Helper()
	tokensOnce.Do(func() {
		m := map[string]string{}
		for caller, c := range map[string]devissuer.Claims{
			expired:      {Subject: subjectA, Roles: []string{auth.RoleShopper}, TTL: -time.Minute},
			wrongAud:     {Subject: subjectA, Roles: []string{auth.RoleShopper}, Audience: "not-carbuild"},
			badSignature: {Subject: subjectA, Roles: []string{auth.RoleShopper}, Forged: true},
			shopperA:     {Subject: subjectA, Roles: []string{auth.RoleShopper}},
			shopperB:     {Subject: subjectB, Roles: []string{auth.RoleShopper}},
			operator:     {Subject: subjectOp, Roles: []string{auth.RoleShopper, auth.RoleOperator}},
		} {
			tok, err := sys.Issuer.Token(c)
			if err != nil {
				panic(err)
			}
			m[caller] = tok
		}
		tokensMap = m
	})
	return tokensMap
}

// as returns the headers of a request by caller, plus extra pairs.
func as(t *testing.T, caller string, extra ...string) []string {
	if caller == noToken {
		return extra
	}
	tok, ok := tokens(t)[caller]
	if !ok {
		tok = caller // a token itself (see bearer)
	}
	return append([]string{"Authorization", "Bearer " + tok}, extra...)
}

// freshShopper signs a shopper token for a subject no other test (or
// earlier run in this process) uses, so its order list is the test's alone.
func freshShopper(t *testing.T, name string) string {
	t.Helper()
	tok, err := sys.Issuer.Token(devissuer.Claims{Subject: newKey(name), Roles: []string{auth.RoleShopper}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

var keySeq struct {
	sync.Mutex
	n int
}

func newKey(prefix string) string {
	keySeq.Lock()
	defer keySeq.Unlock()
	keySeq.n++
	return fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano(), keySeq.n)
}

// placeOrder places a one-headlight civic order as caller; it returns the
// order id and its receipt token ("" for a customer's order).
func placeOrder(t *testing.T, caller, key string) (id, receipt string) {
	t.Helper()
	r := call(t, "POST", "/v1/orders", orderBody(key, 1), as(t, caller)...)
	if r.status != 200 {
		t.Fatalf("place order as %s = %d %s", caller, r.status, r.body)
	}
	o := r.json(t)
	receipt, _ = o["receiptToken"].(string)
	return o["id"].(string), receipt
}

// orderBody is an order of qty civic headlights (part 10, R$ 350.00 each)
// at the total the rules give.
func orderBody(key string, qty int) string {
	shipping := max(1500*qty, 2000)
	return fmt.Sprintf(`{"idempotencyKey":%q,"items":[{"partId":"10","quantity":%d}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"%d"}}`,
		key, qty, 35000*qty+shipping)
}

// TestAuthorizationTable calls every REST route as every caller and checks
// the status. Bad tokens are refused at the edge (401) whatever the route;
// browsing, quoting and ordering stay open to anonymous callers; an order is
// readable only by its customer (404 for everyone else, as for an unknown
// id); listing orders needs a token; the management API needs the operator
// role (401 without a token, 403 with another).
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	aliceOrder, _ := placeOrder(t, shopperA, newKey("table-alice"))
	// want maps each caller to the status; callers not listed get def.
	type row struct {
		method, path string
		body         func() string // fresh per call (idempotency keys)
		def          int
		want         map[string]int
	}
	bad := map[string]int{expired: 401, wrongAud: 401, badSignature: 401}
	with := func(m map[string]int) map[string]int {
		out := map[string]int{}
		for k, v := range bad {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	static := func(s string) func() string { return func() string { return s } }
	admin := func(operatorStatus int) map[string]int { return map[string]int{noToken: 401, operator: operatorStatus} }
	rows := []row{
		{"GET", "/v1/cars", nil, 200, with(nil)},
		{"GET", "/v1/cars/civic/parts?year=2023", nil, 200, with(nil)},
		{"GET", "/v1/parts:batchGet?ids=7&ids=10", nil, 200, with(nil)},
		{"POST", "/v1/quotes", static(`{"items":[{"partId":"7","quantity":1}]}`), 200, with(nil)},
		{"POST", "/v1/orders", func() string { return orderBody(newKey("table"), 1) }, 200, with(nil)},
		{"GET", "/v1/orders/" + aliceOrder, nil, 404, with(map[string]int{shopperA: 200})},
		{"GET", "/v1/orders", nil, 200, with(map[string]int{noToken: 401})},
		{"GET", "/health", nil, 200, with(nil)},
		{"POST", "/get-pecas", static(`{"modelo":"Civic","ano":2023}`), 200, with(nil)},
		{"POST", "/calcular", static(`{"itens":[{"peca":{"id":"7"},"quantidade":1}]}`), 200, with(nil)},
		{"POST", "/pagar", static(`{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}`), 200, with(nil)},
		{"GET", "/healthz", nil, 200, with(nil)},
		{"GET", "/readyz", nil, 200, with(nil)},
		{"GET", "/openapi.json", nil, 200, with(nil)},
		{"GET", "/", nil, 200, with(nil)},
		// The management API: operators only, refused at the gateway (and
		// again by the catalog). The operator's requests name records that
		// do not exist or are invalid, so the table changes nothing.
		{"POST", "/v1/admin/cars", static(`{"id":"Not A Slug","name":"x","firstYear":2020,"lastYear":2020}`), 403, with(admin(400))},
		{"PATCH", "/v1/admin/cars/no-such-car", static(`{"name":"x"}`), 403, with(admin(404))},
		{"POST", "/v1/admin/cars/no-such-car:retire", static(`{}`), 403, with(admin(404))},
		{"POST", "/v1/admin/parts", static(`{"carId":"no-such-car","name":"x","category":"PART_CATEGORY_HOOD","price":{"currencyCode":"BRL","minorUnits":"1"}}`), 403, with(admin(404))},
		{"PATCH", "/v1/admin/parts/999999999", static(`{"price":{"currencyCode":"BRL","minorUnits":"1"}}`), 403, with(admin(404))},
		{"POST", "/v1/admin/parts/999999999:retire", static(`{}`), 403, with(admin(404))},
	}
	var table strings.Builder
	fmt.Fprintf(&table, "%-40s", "route")
	for _, c := range callers {
		fmt.Fprintf(&table, " %-14s", c)
	}
	for _, r := range rows {
		route := r.method + " " + strings.Replace(r.path, aliceOrder, "{alice's order}", 1)
		fmt.Fprintf(&table, "\n%-40s", route)
		for _, c := range callers {
			want, ok := r.want[c]
			if !ok {
				want = r.def
			}
			body := ""
			if r.body != nil {
				body = r.body()
			}
			got := call(t, r.method, r.path, body, as(t, c)...)
			mark := ""
			if got.status != want {
				mark = "!"
				t.Errorf("%s as %s = %d, want %d: %s", route, c, got.status, want, got.body)
			}
			if got.status == 401 && !strings.HasPrefix(got.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s as %s: 401 without a Bearer WWW-Authenticate challenge", route, c)
			}
			fmt.Fprintf(&table, " %-14s", fmt.Sprint(got.status, mark))
		}
	}
	t.Logf("status by route and caller:\n%s", table.String())
}

// TestAuthorizationTableGRPC calls pricing and catalog directly, skipping
// the gateway: each service verifies the token itself, so a bad token is
// UNAUTHENTICATED and identity cannot be claimed by a header.
func TestAuthorizationTableGRPC(t *testing.T) {
	t.Parallel()
	aliceOrder, _ := placeOrder(t, shopperA, newKey("grpc-table-alice"))
	pricing := pricingv1.NewPricingServiceClient(dial(t, sys.Addrs.Pricing))
	catalog := catalogv1.NewCatalogServiceClient(dial(t, sys.Addrs.Catalog))
	catalogAdmin := catalogv1.NewCatalogAdminServiceClient(dial(t, sys.Addrs.Catalog))
	type row struct {
		name string
		call func(md metadata.MD) error
		def  codes.Code
		want map[string]codes.Code
	}
	bad := func(m map[string]codes.Code) map[string]codes.Code {
		out := map[string]codes.Code{expired: codes.Unauthenticated, wrongAud: codes.Unauthenticated, badSignature: codes.Unauthenticated}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	rows := []row{
		{"catalog ListCars", func(md metadata.MD) error {
			_, err := catalog.ListCars(metadata.NewOutgoingContext(ctxT(t), md), &catalogv1.ListCarsRequest{})
			return err
		}, codes.OK, bad(nil)},
		{"pricing GetOrder(alice's)", func(md metadata.MD) error {
			_, err := pricing.GetOrder(metadata.NewOutgoingContext(ctxT(t), md), &pricingv1.GetOrderRequest{OrderId: aliceOrder})
			return err
		}, codes.NotFound, bad(map[string]codes.Code{shopperA: codes.OK})},
		{"catalog admin UpdatePart(unknown)", func(md metadata.MD) error {
			name := "x"
			_, err := catalogAdmin.UpdatePart(metadata.NewOutgoingContext(ctxT(t), md), &catalogv1.UpdatePartRequest{Id: "999999999", Name: &name})
			return err
		}, codes.PermissionDenied, bad(map[string]codes.Code{noToken: codes.Unauthenticated, operator: codes.NotFound})},
		{"catalog admin RetireCar(unknown)", func(md metadata.MD) error {
			_, err := catalogAdmin.RetireCar(metadata.NewOutgoingContext(ctxT(t), md), &catalogv1.RetireCarRequest{Id: "no-such-car"})
			return err
		}, codes.PermissionDenied, bad(map[string]codes.Code{noToken: codes.Unauthenticated, operator: codes.NotFound})},
		{"pricing ListOrders", func(md metadata.MD) error {
			_, err := pricing.ListOrders(metadata.NewOutgoingContext(ctxT(t), md), &pricingv1.ListOrdersRequest{})
			return err
		}, codes.OK, bad(map[string]codes.Code{noToken: codes.Unauthenticated})},
	}
	for _, r := range rows {
		for _, c := range callers {
			md := metadata.MD{}
			if c != noToken {
				md.Set(auth.MetadataKey, "Bearer "+tokens(t)[c])
			}
			want, ok := r.want[c]
			if !ok {
				want = r.def
			}
			if got := status.Code(r.call(md)); got != want {
				t.Errorf("%s as %s = %v, want %v", r.name, c, got, want)
			}
		}
	}
	// A caller that skips the gateway cannot name itself: only a verified
	// token makes an identity.
	for _, md := range []metadata.MD{
		metadata.Pairs("x-subject", subjectA),
		metadata.Pairs("x-forwarded-user", subjectA),
		metadata.Pairs(auth.MetadataKey, "Bearer "+strings.Replace(tokens(t)[shopperA], ".", ".x", 1)),
	} {
		_, err := pricing.GetOrder(metadata.NewOutgoingContext(ctxT(t), md), &pricingv1.GetOrderRequest{OrderId: aliceOrder})
		if c := status.Code(err); c != codes.NotFound && c != codes.Unauthenticated {
			t.Errorf("GetOrder(alice's) with %v = %v, want NotFound or Unauthenticated", md, err)
		}
	}
}

// TestBOLA checks that shopper B can neither read, list nor infer shopper
// A's orders, and anonymous callers only their own by receipt.
func TestBOLA(t *testing.T) {
	t.Parallel()
	// Own subjects: the table test places orders as shopperB concurrently.
	shopperA, shopperB := freshShopper(t, "bola-a"), freshShopper(t, "bola-b")
	key := newKey("bola-shared")
	aID, _ := placeOrder(t, shopperA, key)

	// Reading: B's answer for A's order is byte for byte the answer for an
	// id that does not exist.
	unknown := call(t, "GET", "/v1/orders/00000000-0000-4000-8000-00000000b01a", "", as(t, shopperB)...)
	for _, caller := range []string{shopperB, operator, noToken} {
		got := call(t, "GET", "/v1/orders/"+aID, "", as(t, caller)...)
		if got.status != 404 || string(got.body) != string(unknown.body) {
			t.Errorf("%s reads A's order = %d %s; want the unknown id's 404 %s", caller, got.status, got.body, unknown.body)
		}
	}
	if got := call(t, "GET", "/v1/orders/"+aID, "", as(t, shopperA)...); got.status != 200 {
		t.Errorf("A reads her order = %d %s", got.status, got.body)
	}

	// Inferring through idempotency keys: B's order with A's key and another
	// body is B's own new order, not a 409 naming A's.
	b1 := call(t, "POST", "/v1/orders", orderBody(key, 2), as(t, shopperB)...)
	if b1.status != 200 || b1.json(t)["id"] == aID || strings.Contains(string(b1.body), aID) {
		t.Fatalf("B with A's key, other body = %d %s; want B's own new order", b1.status, b1.body)
	}
	b2 := call(t, "POST", "/v1/orders", orderBody(newKey("bola-b"), 1), as(t, shopperB)...)
	if b2.status != 200 {
		t.Fatalf("B's second order = %d %s", b2.status, b2.body)
	}
	// A's own conflict names no order either.
	conflict := call(t, "POST", "/v1/orders", orderBody(key, 3), as(t, shopperA)...)
	if conflict.status != 409 || strings.Contains(string(conflict.body), aID) {
		t.Errorf("A's key with another body = %d %s; want 409 without the order id", conflict.status, conflict.body)
	}

	// Listing: each sees only their own, newest first, in pages.
	list := func(caller string, size int) []string {
		var ids []string
		token := ""
		for page := 0; page < 50; page++ {
			r := call(t, "GET", fmt.Sprintf("/v1/orders?page_size=%d&page_token=%s", size, token), "", as(t, caller)...)
			if r.status != 200 {
				t.Fatalf("list as %s = %d %s", caller, r.status, r.body)
			}
			v := r.json(t)
			orders, _ := v["orders"].([]any)
			for _, o := range orders {
				ids = append(ids, o.(map[string]any)["id"].(string))
			}
			token, _ = v["nextPageToken"].(string)
			if token == "" {
				return ids
			}
		}
		t.Fatalf("list as %s never ended", caller)
		return nil
	}
	bIDs := list(shopperB, 1)
	if len(bIDs) < 2 || bIDs[0] != b2.json(t)["id"] || bIDs[1] != b1.json(t)["id"] {
		t.Errorf("B's list = %v; want his two orders newest first", bIDs)
	}
	for _, id := range bIDs {
		if id == aID {
			t.Errorf("B's list contains A's order %s", id)
		}
	}
	found := false
	for _, id := range list(shopperA, 100) {
		found = found || id == aID
		if id == b1.json(t)["id"] || id == b2.json(t)["id"] {
			t.Errorf("A's list contains B's order %s", id)
		}
	}
	if !found {
		t.Errorf("A's list lacks her order %s", aID)
	}

	// Anonymous orders: readable with their receipt only, by anyone holding
	// it, and a receipt opens no other order.
	gKey := newKey("bola-guest")
	gID, receipt := placeOrder(t, noToken, gKey)
	if len(receipt) < 43 {
		t.Fatalf("anonymous order answered receipt %q; want a 256-bit token", receipt)
	}
	for _, tc := range []struct {
		name    string
		headers []string
		path    string
		want    int
	}{
		{"no receipt", nil, gID, 404},
		{"shopper without receipt", as(t, shopperA), gID, 404},
		{"wrong receipt", []string{"Order-Receipt", strings.Repeat("x", 43)}, gID, 404},
		{"receipt", []string{"Order-Receipt", receipt}, gID, 200},
		{"receipt on A's order", []string{"Order-Receipt", receipt}, aID, 404},
	} {
		if got := call(t, "GET", "/v1/orders/"+tc.path, "", tc.headers...); got.status != tc.want {
			t.Errorf("anonymous order, %s = %d %s; want %d", tc.name, got.status, got.body, tc.want)
		}
	}
	// Another anonymous caller reusing the key with another body learns no id.
	if c := call(t, "POST", "/v1/orders", orderBody(gKey, 2)); c.status != 409 || strings.Contains(string(c.body), gID) {
		t.Errorf("anonymous key reuse = %d %s; want 409 without the order id", c.status, c.body)
	}
	// The seed-compatible /pagar is anonymous too: its receipt comes as the
	// Order-Receipt header.
	p := call(t, "POST", "/pagar", `{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}`)
	pid, _ := p.json(t)["pedidoId"].(string)
	pr := p.header.Get("Order-Receipt")
	if p.status != 200 || pid == "" || len(pr) < 43 {
		t.Fatalf("/pagar = %d %s (Order-Receipt %q); want an order and its receipt", p.status, p.body, pr)
	}
	if got := call(t, "GET", "/v1/orders/"+pid, "", "Order-Receipt", pr); got.status != 200 {
		t.Errorf("read a /pagar order with its receipt = %d %s", got.status, got.body)
	}
}

// TestKeyRotation: after the issuer rotates its signing key, tokens signed
// with the new key are accepted (the gateway and the services fetch the new
// JWKS for the unknown key id) and tokens of the old key still are.
func TestKeyRotation(t *testing.T) {
	// Not parallel: it changes the issuer's signing key; tokens() already
	// signed every token the other tests use, with the old key.
	tokens(t)
	old := tokens(t)[shopperA]
	resp, err := http.Post(sys.Issuer.URL()+"/rotate", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	fresh, err := sys.Issuer.Token(devissuer.Claims{Subject: subjectA, Roles: []string{auth.RoleShopper}})
	if err != nil {
		t.Fatal(err)
	}
	// A key id unknown to a verifier is fetched at most once per
	// AUTH_JWKS_REFRESH_MIN (10 s): wait for the state, bounded.
	start := time.Now()
	var got response
	for {
		got = call(t, "GET", "/v1/orders?page_size=1", "", "Authorization", "Bearer "+fresh)
		if got.status == 200 || time.Since(start) > 30*time.Second {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got.status != 200 {
		t.Fatalf("token of the rotated-in key = %d %s after %s; want 200", got.status, got.body, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("token of the rotated-in key accepted after %s", time.Since(start).Round(time.Millisecond))
	if got := call(t, "GET", "/v1/orders?page_size=1", "", "Authorization", "Bearer "+old); got.status != 200 {
		t.Errorf("token of the old key after rotation = %d %s; want 200 (still published)", got.status, got.body)
	}
}
