package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/carbuild/carbuild/shared/auth"
	catalogv1 "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1"
	moneyv1 "github.com/carbuild/carbuild/shared/gen/carbuild/money/v1"
	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
)

// The management API tests create their own cars and parts and retire them
// before they end, and change part 6 (as the cache tests do) only to put
// it back. They are not parallel: the parallel tests count the seed's cars.

// audited is a catalog.audit row as the tests compare it.
type audited struct {
	Actor, Action string
	Before, After map[string]any
}

// auditTrail returns the audit rows of one record, oldest first, read as
// the database owner (the catalog's own role cannot read them).
func auditTrail(t *testing.T, entity, id string) []audited {
	t.Helper()
	ctx := ctxT(t)
	db, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(context.Background())
	rows, err := db.Query(ctx, `SELECT actor, action, before, after FROM catalog.audit
		WHERE entity = $1 AND entity_id = $2 ORDER BY id`, entity, id)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audited, error) {
		var a audited
		err := r.Scan(&a.Actor, &a.Action, &a.Before, &a.After)
		return a, err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// awaitStatus calls until the answer has status want (a read through the
// gateway's cache sees a change once the new revision reached it), failing
// after stateBound; it returns how long that took.
func awaitStatus(t *testing.T, method, path string, want int) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := call(t, method, path, "")
		if r.status == want {
			return time.Since(start)
		}
		if time.Since(start) > stateBound {
			t.Fatalf("%s %s = %d %s for %v, want %d", method, path, r.status, r.body, stateBound, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAdminREST drives a car and a part through their life over the
// gateway as an operator: create, change with and without the right
// version, refuse bad input, retire; the read side follows, and every
// committed change left one audit row naming the operator.
func TestAdminREST(t *testing.T) {
	op := as(t, operator)
	carID := newKey("e2e-rest")
	name := "Car " + carID

	r := call(t, "POST", "/v1/admin/cars", fmt.Sprintf(`{"id":%q,"name":%q,"firstYear":2020,"lastYear":2024}`, carID, name), op...)
	if r.status != 200 {
		t.Fatalf("create car = %d %s", r.status, r.body)
	}
	wantCar := fmt.Sprintf(`{"car":{"id":%q,"name":%q,"firstYear":2020,"lastYear":2024},"version":"1","retired":false}`, carID, name)
	if err := matchJSON(wantCar, r.body, nil); err != nil {
		t.Errorf("create car: %v", err)
	}
	t.Cleanup(func() { retireCar(t, carID) })
	if r := call(t, "POST", "/v1/admin/cars", fmt.Sprintf(`{"id":%q,"name":"Other","firstYear":2020,"lastYear":2024}`, carID), op...); r.status != 409 {
		t.Errorf("create the car again = %d %s, want 409", r.status, r.body)
	}

	r = call(t, "POST", "/v1/admin/parts", fmt.Sprintf(`{"carId":%q,"name":"Farol","category":"PART_CATEGORY_HEADLIGHT","price":{"currencyCode":"BRL","minorUnits":"15000"}}`, carID), op...)
	if r.status != 200 {
		t.Fatalf("create part = %d %s", r.status, r.body)
	}
	partID, _ := field(t, r.json(t), "part.id").(string)
	awaitStatus(t, "GET", "/v1/cars/"+carID+"/parts", 200)

	// Changes name the version they read: a second change based on the
	// same version is refused, whoever made the first.
	const change = `{"price":{"currencyCode":"BRL","minorUnits":"16000"},"expectedVersion":"1"}`
	r = call(t, "PATCH", "/v1/admin/parts/"+partID, change, op...)
	if r.status != 200 || field(t, r.json(t), "version") != "2" || field(t, r.json(t), "part.price.minorUnits") != "16000" {
		t.Fatalf("change the price = %d %s, want version 2 at 16000", r.status, r.body)
	}
	r = call(t, "PATCH", "/v1/admin/parts/"+partID, change, op...)
	wantStale := fmt.Sprintf(`{"code":400,"status":"FAILED_PRECONDITION","message":"part %s is at version 2, not 1: read it again"}`, partID)
	if err := matchJSON(wantStale, r.body, nil); r.status != 400 || err != nil {
		t.Errorf("change based on an old version = %d %s, want %s", r.status, r.body, wantStale)
	}

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		message                  string
	}{
		{"negative price", "PATCH", "/v1/admin/parts/" + partID, `{"price":{"currencyCode":"BRL","minorUnits":"-1"}}`, 400, "price must be between 0 and 1000000000000 minor units, got -1"},
		{"dollars", "PATCH", "/v1/admin/parts/" + partID, `{"price":{"currencyCode":"USD","minorUnits":"100"}}`, 400, `price must be in BRL, got "USD"`},
		{"nothing to change", "PATCH", "/v1/admin/parts/" + partID, `{}`, 400, "nothing to change: set name, category or price"},
		{"unknown field", "PATCH", "/v1/admin/parts/" + partID, `{"priceMinor":100}`, 400, ""},
		{"not a part id", "PATCH", "/v1/admin/parts/abc", `{"name":"x"}`, 400, `part id "abc" must be a positive decimal number`},
		{"unknown part", "PATCH", "/v1/admin/parts/999999999", `{"name":"x"}`, 404, "part 999999999 not found"},
		{"blank name", "PATCH", "/v1/admin/parts/" + partID, `{"name":"  "}`, 400, "part name must not be empty"},
		{"no category", "POST", "/v1/admin/parts", fmt.Sprintf(`{"carId":%q,"name":"x","price":{"currencyCode":"BRL","minorUnits":"1"}}`, carID), 400, "category must be one of"},
		{"chosen part id", "POST", "/v1/admin/parts", fmt.Sprintf(`{"id":"7","carId":%q,"name":"x","category":"PART_CATEGORY_HOOD","price":{"currencyCode":"BRL","minorUnits":"1"}}`, carID), 400, "a new part's id is assigned by the catalog: leave it empty"},
		{"part of no car", "POST", "/v1/admin/parts", `{"carId":"no-such-car","name":"x","category":"PART_CATEGORY_HOOD","price":{"currencyCode":"BRL","minorUnits":"1"}}`, 404, `car "no-such-car" not found`},
		{"car id not a slug", "POST", "/v1/admin/cars", `{"id":"Gol GTI","name":"Gol","firstYear":2020,"lastYear":2020}`, 400, "must be a lowercase slug"},
		{"years reversed", "PATCH", "/v1/admin/cars/" + carID, `{"firstYear":2025}`, 400, "first_year 2025 is after last_year 2024"},
		{"car with a part on sale", "POST", "/v1/admin/cars/" + carID + ":retire", `{}`, 400, "car " + carID + " still has 1 parts on sale: retire them first"},
		{"no JSON", "PATCH", "/v1/admin/parts/" + partID, ``, 400, ""},
	} {
		r := call(t, tc.method, tc.path, tc.body, op...)
		if msg, _ := r.json(t)["message"].(string); r.status != tc.status || !strings.Contains(msg, tc.message) {
			t.Errorf("%s: %s %s = %d %s, want %d saying %q", tc.name, tc.method, tc.path, r.status, r.body, tc.status, tc.message)
		}
	}

	if r := call(t, "POST", "/v1/admin/parts/"+partID+":retire", `{"expectedVersion":"2"}`, op...); r.status != 200 || field(t, r.json(t), "retired") != true {
		t.Fatalf("retire the part = %d %s", r.status, r.body)
	}
	// The read side learns of the change from the commit's notification, so
	// the part disappears within the documented bound, not at once.
	took := awaitStatus(t, "GET", "/v1/parts:batchGet?ids="+partID, 404)
	t.Logf("the retired part answers 404 through the gateway %v after the retirement was answered", took.Round(time.Microsecond))
	if r := call(t, "POST", "/v1/admin/cars/"+carID+":retire", `{}`, op...); r.status != 200 {
		t.Fatalf("retire the car = %d %s", r.status, r.body)
	}
	took = awaitStatus(t, "GET", "/v1/cars/"+carID+"/parts", 404)
	t.Logf("the retired car's parts answer 404 through the gateway %v after the retirement was answered", took.Round(time.Microsecond))

	part := func(version int, price float64, retired bool) map[string]any {
		return map[string]any{"id": partID, "carId": carID, "name": "Farol", "category": "headlight", "priceMinor": price,
			"currency": "BRL", "version": float64(version), "retired": retired}
	}
	want := []audited{
		{subjectOp, "create", nil, part(1, 15000, false)},
		{subjectOp, "update", part(1, 15000, false), part(2, 16000, false)},
		{subjectOp, "retire", part(2, 16000, false), part(3, 16000, true)},
	}
	if diff := cmp.Diff(want, auditTrail(t, "part", partID)); diff != "" {
		t.Errorf("audit rows of the part (-want +got):\n%s", diff)
	}
	car := func(version int, retired bool) map[string]any {
		return map[string]any{"id": carID, "name": name, "firstYear": 2020.0, "lastYear": 2024.0, "version": float64(version), "retired": retired}
	}
	if diff := cmp.Diff([]audited{{subjectOp, "create", nil, car(1, false)}, {subjectOp, "retire", car(1, false), car(2, true)}},
		auditTrail(t, "car", carID)); diff != "" {
		t.Errorf("audit rows of the car (-want +got):\n%s", diff)
	}
}

// retireCar retires car id and its parts as the operator, if they are not
// retired yet, and waits until the gateway's car list no longer shows it:
// the parallel tests count the seed's cars.
func retireCar(t *testing.T, id string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stateBound)
	defer cancel()
	ctx = auth.WithBearer(ctx, tokens(t)[operator])
	admin := catalogv1.NewCatalogAdminServiceClient(dial(t, sys.Addrs.Catalog))
	read := catalogv1.NewCatalogServiceClient(dial(t, sys.Addrs.Catalog))
	// The catalog's list of the car's parts follows the changes through
	// their notification: a part created a moment ago may not be listed yet,
	// and the car then refuses to retire. Retry, re-listing, within the bound.
	for {
		if parts, err := read.ListParts(ctx, &catalogv1.ListPartsRequest{CarId: id, PageSize: 100}); err == nil {
			for _, p := range parts.GetParts() {
				if _, err := admin.RetirePart(ctx, &catalogv1.RetirePartRequest{Id: p.GetId()}); err != nil && status.Code(err) != codes.FailedPrecondition {
					t.Errorf("retire part %s: %v", p.GetId(), err)
				}
			}
		}
		_, err := admin.RetireCar(ctx, &catalogv1.RetireCarRequest{Id: id})
		if err != nil && status.Code(err) != codes.FailedPrecondition {
			t.Errorf("retire car %s: %v", id, err)
		}
		// FailedPrecondition "… still has N parts on sale" is the one answer
		// worth another round; "… is retired" means done.
		if status.Code(err) != codes.FailedPrecondition || strings.Contains(status.Convert(err).Message(), "retired") {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("car %s still has parts on sale %v after retiring them: %v", id, stateBound, err)
		}
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	for strings.Contains(string(call(t, "GET", "/v1/cars", "").body), `"`+id+`"`) {
		if time.Since(start) > stateBound {
			t.Fatalf("car %s still listed %v after its retirement", id, stateBound)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAdminGRPC calls the catalog's CatalogAdminService directly, skipping
// the gateway: the catalog checks the token and the role itself.
func TestAdminGRPC(t *testing.T) {
	admin := catalogv1.NewCatalogAdminServiceClient(dial(t, sys.Addrs.Catalog))
	asCaller := func(caller string) context.Context {
		ctx := ctxT(t)
		if caller == noToken {
			return ctx
		}
		return metadata.AppendToOutgoingContext(ctx, auth.MetadataKey, "Bearer "+tokens(t)[caller])
	}
	carID := newKey("e2e-grpc")
	create := &catalogv1.CreateCarRequest{Car: &catalogv1.Car{Id: carID, Name: "Car " + carID, FirstYear: 2019, LastYear: 2019}}
	// Nobody but an operator gets past the check, and nothing is written.
	for caller, want := range map[string]codes.Code{noToken: codes.Unauthenticated, expired: codes.Unauthenticated,
		badSignature: codes.Unauthenticated, shopperA: codes.PermissionDenied, shopperB: codes.PermissionDenied} {
		if _, err := admin.CreateCar(asCaller(caller), create); status.Code(err) != want {
			t.Errorf("CreateCar as %s = %v, want %v", caller, err, want)
		}
	}
	got, err := admin.CreateCar(asCaller(operator), create)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { retireCar(t, carID) })
	want := &catalogv1.ManagedCar{Car: create.GetCar(), Version: 1}
	if diff := cmp.Diff(want, got, protocmp.Transform()); diff != "" {
		t.Errorf("CreateCar (-want +got):\n%s", diff)
	}
	name := "Renamed " + carID
	upd, err := admin.UpdateCar(asCaller(operator), &catalogv1.UpdateCarRequest{Id: carID, Name: &name, ExpectedVersion: 1})
	if err != nil || upd.GetCar().GetName() != name || upd.GetVersion() != 2 {
		t.Errorf("UpdateCar = %v, %v; want the new name at version 2", upd, err)
	}
	part, err := admin.CreatePart(asCaller(operator), &catalogv1.CreatePartRequest{Part: &catalogv1.Part{CarId: carID, Name: "Motor",
		Category: catalogv1.PartCategory_PART_CATEGORY_ENGINE, Price: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: 400000}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		req  *catalogv1.UpdatePartRequest
		want codes.Code
	}{
		{"unspecified category", &catalogv1.UpdatePartRequest{Id: part.GetPart().GetId(), Category: catalogv1.PartCategory_PART_CATEGORY_UNSPECIFIED.Enum()}, codes.InvalidArgument},
		{"unknown category number", &catalogv1.UpdatePartRequest{Id: part.GetPart().GetId(), Category: catalogv1.PartCategory(99).Enum()}, codes.InvalidArgument},
		{"stale version", &catalogv1.UpdatePartRequest{Id: part.GetPart().GetId(), Name: &name, ExpectedVersion: 7}, codes.FailedPrecondition},
		{"negative version", &catalogv1.UpdatePartRequest{Id: part.GetPart().GetId(), Name: &name, ExpectedVersion: -1}, codes.InvalidArgument},
		{"unknown part", &catalogv1.UpdatePartRequest{Id: "999999999", Name: &name}, codes.NotFound},
	} {
		if _, err := admin.UpdatePart(asCaller(operator), tc.req); status.Code(err) != tc.want {
			t.Errorf("UpdatePart, %s = %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := admin.RetirePart(asCaller(operator), &catalogv1.RetirePartRequest{Id: part.GetPart().GetId(), ExpectedVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RetireCar(asCaller(operator), &catalogv1.RetireCarRequest{Id: carID, ExpectedVersion: 2}); err != nil {
		t.Fatal(err)
	}
	trail := auditTrail(t, "car", carID)
	if len(trail) != 3 || trail[1].Action != "update" || trail[1].Before["name"] != "Car "+carID || trail[1].After["name"] != name || trail[2].Action != "retire" {
		t.Errorf("car audit rows = %+v; want create, rename (before and after), retire", trail)
	}
	for _, a := range append(trail, auditTrail(t, "part", part.GetPart().GetId())...) {
		if a.Actor != subjectOp {
			t.Errorf("audit row by %q, want the operator's subject %q", a.Actor, subjectOp)
		}
	}
}

// TestAdminPriceChangeReachesCaches changes part 6's price through the
// management API and waits (bounded, by state) until the gateway's
// /v1/cars/fusca/parts answer and a pricing quote show it, logging how long
// that took; then it puts the price back through gRPC, the same way.
func TestAdminPriceChangeReachesCaches(t *testing.T) {
	ctx := ctxT(t)
	pricing := pricingv1.NewPricingServiceClient(dial(t, sys.Addrs.Pricing))
	admin := catalogv1.NewCatalogAdminServiceClient(dial(t, sys.Addrs.Catalog))
	original, _ := capoPrice(ctx, t)
	read := cacheReads[0] // GET /v1/cars/fusca/parts
	// Warm the caches, so that the change has something to replace.
	repeatReadHits(t, stackGateway(), read, original)
	quotedPrice(ctx, t, pricing)

	set := func(how string, price int64) {
		t.Helper()
		var answered time.Time
		if how == "REST" {
			r := call(t, "PATCH", "/v1/admin/parts/"+capoID, fmt.Sprintf(`{"price":{"currencyCode":"BRL","minorUnits":"%d"}}`, price), as(t, operator)...)
			answered = time.Now()
			if r.status != 200 {
				t.Fatalf("PATCH price %d = %d %s", price, r.status, r.body)
			}
		} else {
			_, err := admin.UpdatePart(auth.WithBearer(ctx, tokens(t)[operator]), &catalogv1.UpdatePartRequest{Id: capoID,
				Price: &moneyv1.Money{CurrencyCode: "BRL", MinorUnits: price}})
			answered = time.Now()
			if err != nil {
				t.Fatalf("UpdatePart price %d: %v", price, err)
			}
		}
		gw := awaitPrice(t, sys.GatewayURL, read, price, answered)
		var quoted time.Duration
		for {
			if quotedPrice(ctx, t, pricing) == price {
				quoted = time.Since(answered)
				break
			}
			if time.Since(answered) > stateBound {
				t.Fatalf("pricing still quotes part 6 at another price than %d %v after the change", price, stateBound)
			}
			time.Sleep(time.Millisecond)
		}
		t.Logf("price %d set over %s: served by the gateway's %s %v, then quoted by pricing %v after the change was answered (polled one after the other)",
			price, how, read.path, gw.Round(time.Microsecond), quoted.Round(time.Microsecond))
	}
	set("REST", original+1234)
	set("gRPC", original)
	trail := auditTrail(t, "part", capoID)
	if n := len(trail); n < 2 || trail[n-2].After["priceMinor"] != float64(original+1234) || trail[n-1].Before["priceMinor"] != float64(original+1234) ||
		trail[n-1].After["priceMinor"] != float64(original) {
		b, _ := json.Marshal(trail)
		t.Errorf("audit rows of part 6 = %s; want the change and its undoing last", b)
	}
}
