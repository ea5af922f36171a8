package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/pgboot"
)

// readmeTools are the CLIs the README tells users to install, at the same
// versions; they are installed once into a versioned cache folder.
var readmeTools = map[string][]string{
	"grpcurl": {"github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3"},
	"goose": {"-tags=no_mysql no_sqlite3 no_mssql no_vertica no_clickhouse no_ydb no_libsql",
		"github.com/pressly/goose/v3/cmd/goose@v3.30.0"},
}

// readmeNotRun are the README's shell blocks that this test does not run,
// by their first line, with the reason. Any other block must be under "Try
// it", where every block is run.
var readmeNotRun = map[string]string{
	"make run     # PostgreSQL (found or started), migrations, catalog, pricing, gateway on http://127.0.0.1:8000":                      "starts the stack on the default ports and runs until Ctrl-C; TestRunBanner drives it",
	"ctlptl apply -f ctlptl.yaml   # Kind cluster \"carbuild\" (1 control plane + 3 workers, worker-id 1..3) + registry localhost:5005": "needs Docker, Kind, ctlptl and Tilt",
	"make loadtest      # Locust shopper journeys against a running `make run` (API=v1|compat, USERS, DURATION)":                        "load runs of minutes; make test-loadtest-smoke runs Locust",
}

// readmeWant is what one command of the README's examples must answer.
// Exactly one of json, lines and check is set.
type readmeWant struct {
	// cmd is the command as the README writes it; quoting and line breaks
	// do not matter. $NAME is a value an earlier answer bound (<uuid:NAME>).
	cmd string
	// status is the HTTP status for curl, the exit code for other tools.
	status int
	// json is the exact answer. "<uuid>" and "<time>" stand for a generated
	// UUID and RFC 3339 time; "<uuid:NAME>" binds the UUID to NAME the first
	// time and must equal it afterwards.
	json string
	// lines are regular expressions the answer's lines must match, in order
	// and all of them (text answers).
	lines []string
	// check looks at the key fields of a large answer.
	check func(out []byte) error
	// bind names the answer (trimmed) for later commands: a token a
	// README line keeps in a shell variable ($NAME).
	bind string
}

// seed answers shared by several commands.
const (
	readmeOrderJSON = `{"id":"<uuid:ORDER_ID>","status":"ORDER_STATUS_CONFIRMED","lines":[
		{"partId":"7","name":"Chassi","quantity":1,"unitPrice":{"currencyCode":"BRL","minorUnits":"800000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"800000"}},
		{"partId":"10","name":"Farol LED","quantity":2,"unitPrice":{"currencyCode":"BRL","minorUnits":"35000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"70000"}}],
		"subtotal":{"currencyCode":"BRL","minorUnits":"870000"},"shipping":{"currencyCode":"BRL","minorUnits":"4500"},"total":{"currencyCode":"BRL","minorUnits":"874500"},
		"createTime":"<time>","receiptToken":""}`
	// readmeGuestOrder is the anonymous order of the README, with its receipt
	// token when placed (RECEIPT) and without it when read back.
	readmeGuestOrder = `{"id":"<uuid:GUEST_ORDER>","status":"ORDER_STATUS_CONFIRMED","lines":[
		{"partId":"13","name":"Spoiler","quantity":3,"unitPrice":{"currencyCode":"BRL","minorUnits":"30000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"90000"}}],
		"subtotal":{"currencyCode":"BRL","minorUnits":"90000"},"shipping":{"currencyCode":"BRL","minorUnits":"4500"},"total":{"currencyCode":"BRL","minorUnits":"94500"},
		"createTime":"<time>","receiptToken":%q}`
	readmeCarsJSON = `{"cars":[{"id":"civic","name":"Civic","firstYear":2023,"lastYear":2023},{"id":"corolla","name":"Corolla","firstYear":2020,"lastYear":2020},{"id":"fusca","name":"Fusca","firstYear":2014,"lastYear":2014}]}`
	readmeTimeRE   = `^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `
)

// readmeWants holds an expectation for every command the README's examples
// run, in README order. A command the README runs without an expectation
// here fails the test, and so does an expectation no README command met.
var readmeWants = append([]readmeWant{
	{cmd: `curl -sf http://127.0.0.1:8000/readyz`, status: 200, json: `{"status":"ready"}`},

	{cmd: `curl -s http://127.0.0.1:8000/v1/cars`, status: 200, json: readmeCarsJSON},
	{cmd: `curl -s 'http://127.0.0.1:8000/v1/cars/civic/parts?year=2023&page_size=3'`, status: 200, json: `{"parts":[
		{"id":"7","carId":"civic","name":"Chassi","category":"PART_CATEGORY_CHASSIS","price":{"currencyCode":"BRL","minorUnits":"800000"}},
		{"id":"8","carId":"civic","name":"Motor 2.0 VTEC","category":"PART_CATEGORY_ENGINE","price":{"currencyCode":"BRL","minorUnits":"650000"}},
		{"id":"9","carId":"civic","name":"Rodas Aro 16","category":"PART_CATEGORY_WHEELS","price":{"currencyCode":"BRL","minorUnits":"120000"}}],
		"nextPageToken":"Y2l2aWM6OQ"}`},
	{cmd: `curl -s 'http://127.0.0.1:8000/v1/parts:batchGet?ids=7&ids=10'`, status: 200, json: `{"parts":[
		{"id":"7","carId":"civic","name":"Chassi","category":"PART_CATEGORY_CHASSIS","price":{"currencyCode":"BRL","minorUnits":"800000"}},
		{"id":"10","carId":"civic","name":"Farol LED","category":"PART_CATEGORY_HEADLIGHT","price":{"currencyCode":"BRL","minorUnits":"35000"}}]}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/quotes -d '{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}'`, status: 200, json: `{"lines":[
		{"partId":"7","name":"Chassi","quantity":1,"unitPrice":{"currencyCode":"BRL","minorUnits":"800000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"800000"}},
		{"partId":"10","name":"Farol LED","quantity":2,"unitPrice":{"currencyCode":"BRL","minorUnits":"35000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"70000"}}],
		"subtotal":{"currencyCode":"BRL","minorUnits":"870000"},"shipping":{"currencyCode":"BRL","minorUnits":"4500"},"total":{"currencyCode":"BRL","minorUnits":"874500"},
		"freeShipping":false}`},
	{cmd: `curl -s 'http://127.0.0.1:8010/token?sub=alice&roles=shopper'`, status: 200, check: checkJWT, bind: "TOKEN"},
	// The header creates the order (or finds it, on a later run against the
	// same database); the body-keyed POST must return the same one.
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/orders -H "Authorization: Bearer $TOKEN" -H 'Idempotency-Key: readme-order-0001' -d '{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}], "expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"}}'`,
		status: 200, json: readmeOrderJSON},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/orders -H "Authorization: Bearer $TOKEN" -d '{"idempotencyKey":"readme-order-0001","items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}], "expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"}}'`,
		status: 200, json: readmeOrderJSON},
	{cmd: `curl -s -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/orders/$ORDER_ID`, status: 200, json: readmeOrderJSON},
	{cmd: `curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8000/v1/orders?page_size=5'`, status: 200, check: checkOrderList},
	{cmd: `curl -s 'http://127.0.0.1:8010/token?sub=bob&roles=shopper'`, status: 200, check: checkJWT, bind: "BOB"},
	{cmd: `curl -s -H "Authorization: Bearer $BOB" http://127.0.0.1:8000/v1/orders/$ORDER_ID`, status: 404, json: `{"code":404,"status":"NOT_FOUND","message":"order not found"}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/orders -d '{"idempotencyKey":"'$KEY'","items":[{"partId":"13","quantity":3}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"94500"}}'`,
		status: 200, json: fmt.Sprintf(readmeGuestOrder, "<token:RECEIPT>")},
	{cmd: `curl -s -H "Order-Receipt: $RECEIPT" http://127.0.0.1:8000/v1/orders/$GUEST_ORDER`, status: 200, json: fmt.Sprintf(readmeGuestOrder, "")},
	{cmd: `curl -s http://127.0.0.1:8000/v1/orders/$GUEST_ORDER`, status: 404, json: `{"code":404,"status":"NOT_FOUND","message":"order not found"}`},

	{cmd: `curl -s http://127.0.0.1:8000/v1/cars/gol/parts`, status: 404, json: `{"code":404,"status":"NOT_FOUND","message":"car \"gol\" not found"}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/quotes -d '{"items":[{"partId":"7","quantity":2}]}'`, status: 400,
		json: `{"code":400,"status":"INVALID_ARGUMENT","message":"only one chassis per order, got 2"}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/v1/orders -H 'Idempotency-Key: readme-order-0001' -d '{"idempotencyKey":"readme-order-0002","items":[{"partId":"7","quantity":1}]}'`, status: 400,
		json: `{"code":400,"status":"INVALID_ARGUMENT","message":"the Idempotency-Key header \"readme-order-0001\" and the body's idempotencyKey \"readme-order-0002\" differ; send one, or the same in both"}`},

	{cmd: `curl -s -X POST http://127.0.0.1:8000/v1/quotes -d '{"items":[{"partId":"7","quantity":1}]}'`, status: 415,
		json: `{"code":415,"status":"UNSUPPORTED_MEDIA_TYPE","message":"the request body must be JSON, sent with Content-Type: application/json"}`},
	{cmd: `curl -s http://127.0.0.1:8000/v1/orders`, status: 401, json: `{"code":401,"status":"UNAUTHENTICATED","message":"listing orders needs a bearer token"}`},
	{cmd: `curl -s http://127.0.0.1:8000/health`, status: 200, json: `{"status":"healthy","services":{"catalog":"SERVING","pricing":"SERVING"}}`},
	// By name, as the earlier system's ORDER BY nome answered.
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/get-pecas -d '{"modelo":"Civic","ano":2023}'`, status: 200, json: `{"pecas":[
		{"id":"12","nome":"Capô Esportivo","valor":600},{"id":"7","nome":"Chassi","valor":8000},{"id":"10","nome":"Farol LED","valor":350},
		{"id":"8","nome":"Motor 2.0 VTEC","valor":6500},{"id":"11","nome":"Parachoque Esportivo","valor":450},{"id":"9","nome":"Rodas Aro 16","valor":1200},
		{"id":"13","nome":"Spoiler","valor":300}]}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/calcular -d '{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}]}'`, status: 200,
		json: `{"preco":8000,"frete":20,"total":8020}`},
	{cmd: `curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:8000/pagar -d '{"itens":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}],"valor_total":8020}'`, status: 200,
		json: `{"pedidoId":"<uuid>","status":"CONFIRMADO","valorTotal":8020,"dataPedido":"<time>","itensComprados":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}],"subtotal":8000,"frete":20}`},

	{cmd: `curl -s http://127.0.0.1:8000/healthz`, status: 200, json: `{"status":"alive"}`},
	{cmd: `curl -s http://127.0.0.1:8000/readyz`, status: 200, json: `{"status":"ready"}`},
	{cmd: `curl -s http://127.0.0.1:8000/openapi.json`, status: 200, check: checkOpenAPI},
	{cmd: `curl -s http://127.0.0.1:9093/metrics`, status: 200, check: checkGatewayMetrics},

	{cmd: `grpcurl -plaintext 127.0.0.1:50051 list`, lines: []string{
		`^carbuild\.catalog\.v1\.CatalogAdminService$`, `^carbuild\.catalog\.v1\.CatalogService$`, `^catalogo\.CatalogoService$`, `^grpc\.health\.v1\.Health$`,
		`^grpc\.reflection\.v1\.ServerReflection$`, `^grpc\.reflection\.v1alpha\.ServerReflection$`}},
	{cmd: `grpcurl -plaintext 127.0.0.1:50052 list`, lines: []string{
		`^carbuild\.pricing\.v1\.PricingService$`, `^grpc\.health\.v1\.Health$`, `^grpc\.reflection\.v1\.ServerReflection$`,
		`^grpc\.reflection\.v1alpha\.ServerReflection$`, `^pricing\.OrcamentoService$`}},
	{cmd: `grpcurl -plaintext -d '{}' 127.0.0.1:50051 carbuild.catalog.v1.CatalogService/ListCars`, json: readmeCarsJSON},
	{cmd: `grpcurl -plaintext -d '{"car_id":"corolla","page_size":2}' 127.0.0.1:50051 carbuild.catalog.v1.CatalogService/ListParts`, json: `{"parts":[
		{"id":"14","carId":"corolla","name":"Chassi","category":"PART_CATEGORY_CHASSIS","price":{"currencyCode":"BRL","minorUnits":"750000"}},
		{"id":"15","carId":"corolla","name":"Motor 1.8 Hybrid","category":"PART_CATEGORY_ENGINE","price":{"currencyCode":"BRL","minorUnits":"700000"}}],
		"nextPageToken":"Y29yb2xsYToxNQ"}`},
	{cmd: `grpcurl -plaintext -d '{"ids":["1","14"]}' 127.0.0.1:50051 carbuild.catalog.v1.CatalogService/BatchGetParts`, json: `{"parts":[
		{"id":"1","carId":"fusca","name":"Chassi","category":"PART_CATEGORY_CHASSIS","price":{"currencyCode":"BRL","minorUnits":"500000"}},
		{"id":"14","carId":"corolla","name":"Chassi","category":"PART_CATEGORY_CHASSIS","price":{"currencyCode":"BRL","minorUnits":"750000"}}]}`},
	{cmd: `grpcurl -plaintext -d '{"modelo":"Fusca","ano":2014}' 127.0.0.1:50051 catalogo.CatalogoService/GetPecas`, json: `{"pecas":[
		{"id":"6","nome":"Capô","valor":350},{"id":"1","nome":"Chassi","valor":5000},{"id":"4","nome":"Farol Dianteiro","valor":150},
		{"id":"2","nome":"Motor 1.6","valor":3500},{"id":"5","nome":"Parachoque Traseiro","valor":200},{"id":"3","nome":"Rodas Aro 14","valor":800}]}`},
	{cmd: `grpcurl -plaintext -d '{"items":[{"part_id":"13","quantity":3}]}' 127.0.0.1:50052 carbuild.pricing.v1.PricingService/CreateQuote`, json: `{"lines":[
		{"partId":"13","name":"Spoiler","quantity":3,"unitPrice":{"currencyCode":"BRL","minorUnits":"30000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"90000"}}],
		"subtotal":{"currencyCode":"BRL","minorUnits":"90000"},"shipping":{"currencyCode":"BRL","minorUnits":"4500"},"total":{"currencyCode":"BRL","minorUnits":"94500"}}`},
	{cmd: `curl -s 'http://127.0.0.1:8010/token?sub=alice&roles=shopper'`, status: 200, check: checkJWT, bind: "TOKEN"},
	{cmd: `grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"idempotency_key":"grpcurl-0001","items":[{"part_id":"13","quantity":3}],"expected_total":{"currency_code":"BRL","minor_units":94500}}' 127.0.0.1:50052 carbuild.pricing.v1.PricingService/PlaceOrder`,
		json: `{"id":"<uuid>","status":"ORDER_STATUS_CONFIRMED","lines":[
		{"partId":"13","name":"Spoiler","quantity":3,"unitPrice":{"currencyCode":"BRL","minorUnits":"30000"},"lineTotal":{"currencyCode":"BRL","minorUnits":"90000"}}],
		"subtotal":{"currencyCode":"BRL","minorUnits":"90000"},"shipping":{"currencyCode":"BRL","minorUnits":"4500"},"total":{"currencyCode":"BRL","minorUnits":"94500"},
		"createTime":"<time>"}`},
	{cmd: `grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"page_size":2}' 127.0.0.1:50052 carbuild.pricing.v1.PricingService/ListOrders`, check: checkOrderList},
	{cmd: `grpcurl -plaintext -d '{"itens":[{"peca":{"id":"7"},"quantidade":1}]}' 127.0.0.1:50052 pricing.OrcamentoService/Calcular`, json: `{"preco":8000,"frete":20,"total":8020}`},
	{cmd: `grpcurl -plaintext -d '{"itens":[{"peca":{"id":"7"},"quantidade":1}],"valor_total":8020}' 127.0.0.1:50052 pricing.OrcamentoService/RealizarCompra`,
		json: `{"pedidoId":"<uuid>","status":"CONFIRMADO","valorTotal":8020,"dataPedido":"<time>","itensComprados":[{"peca":{"id":"7","nome":"Chassi","valor":8000},"quantidade":1}],"subtotal":8000,"frete":20}`},
	{cmd: `grpcurl -plaintext 127.0.0.1:50051 grpc.health.v1.Health/Check`, json: `{"status":"SERVING"}`},

	// An operator changes part 6's price and puts it back.
	{cmd: `curl -s 'http://127.0.0.1:8010/token?sub=olga&roles=shopper,operator'`, status: 200, check: checkJWT, bind: "OPERATOR"},
	{cmd: `curl -s -X PATCH -H 'Content-Type: application/json' -H "Authorization: Bearer $OPERATOR" http://127.0.0.1:8000/v1/admin/parts/6 -d '{"price":{"currencyCode":"BRL","minorUnits":"36000"}}'`,
		status: 200, check: checkCapoPrice(36000)},
	{cmd: `curl -s 'http://127.0.0.1:8010/token?sub=alice&roles=shopper'`, status: 200, check: checkJWT, bind: "TOKEN"},
	{cmd: `curl -s -X PATCH -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/v1/admin/parts/6 -d '{"price":{"currencyCode":"BRL","minorUnits":"1"}}'`,
		status: 403, json: `{"code":403,"status":"PERMISSION_DENIED","message":"catalog management needs the operator role"}`},
	{cmd: `curl -s -X PATCH -H 'Content-Type: application/json' -H "Authorization: Bearer $OPERATOR" http://127.0.0.1:8000/v1/admin/parts/6 -d '{"price":{"currencyCode":"BRL","minorUnits":"35000"}}'`,
		status: 200, check: checkCapoRestored(35000)},
}, readmeGooseWants()...)

// checkCapoPrice checks the management API's answer for part 6 (fusca,
// Capô) at price.
func checkCapoPrice(price int64) func(out []byte) error {
	return func(out []byte) error {
		var got struct {
			Part struct {
				ID, CarID, Name, Category string
				Price                     struct{ CurrencyCode, MinorUnits string }
			}
			Version string
			Retired bool
		}
		if err := json.Unmarshal(out, &got); err != nil {
			return fmt.Errorf("not JSON: %v", err)
		}
		p := got.Part
		if v, err := strconv.ParseInt(got.Version, 10, 64); err != nil || v < 2 || got.Retired ||
			p.ID != "6" || p.CarID != "fusca" || p.Name != "Capô" || p.Category != "PART_CATEGORY_HOOD" ||
			p.Price.CurrencyCode != "BRL" || p.Price.MinorUnits != strconv.FormatInt(price, 10) {
			return fmt.Errorf("%+v, want part 6 at %d centavos, version 2 or more, not retired", got, price)
		}
		return nil
	}
}

// checkCapoRestored is checkCapoPrice for the change that puts the seed's
// price back; then it waits (bounded) until the gateway serves that price:
// the tests after this one read part 6.
func checkCapoRestored(price int64) func(out []byte) error {
	return func(out []byte) error {
		if err := checkCapoPrice(price)(out); err != nil {
			return err
		}
		for start := time.Now(); ; time.Sleep(time.Millisecond) {
			resp, err := http.Get(sys.GatewayURL + "/v1/cars/fusca/parts?page_size=10")
			if err != nil {
				return err
			}
			var page struct {
				Parts []struct {
					ID    string
					Price struct{ MinorUnits string }
				}
			}
			err = json.NewDecoder(resp.Body).Decode(&page)
			resp.Body.Close()
			if err != nil {
				return err
			}
			for _, p := range page.Parts {
				if p.ID == "6" && p.Price.MinorUnits == strconv.FormatInt(price, 10) {
					return nil
				}
			}
			if time.Since(start) > stateBound {
				return fmt.Errorf("the gateway serves %+v %v after the change, want part 6 at %d", page, stateBound, price)
			}
		}
	}
}

// readmeRecorder replaces curl, grpcurl and goose in the README's scripts by
// shell functions that run the real tool unchanged and record, per call, its
// arguments, its answer, its exit code and (curl) the HTTP status, so that
// each command's answer can be checked even inside pipelines and $(...).
const readmeRecorder = `__readme_record() {
	local tool=$1 n rc=0
	shift
	n=$(( $(cat "$README_RECORD/seq") + 1 ))
	echo "$n" > "$README_RECORD/seq"
	printf '%s\0' "$tool" "$@" > "$README_RECORD/$n.args"
	if [ "$tool" = curl ]; then
		command curl "$@" -o "$README_RECORD/$n.out" -w '%{http_code}' > "$README_RECORD/$n.status" || rc=$?
	else
		command "$tool" "$@" > "$README_RECORD/$n.out" 2>&1 || rc=$?
	fi
	echo "$rc" > "$README_RECORD/$n.rc"
	cat "$README_RECORD/$n.out" 2>/dev/null || true
	return "$rc"
}
curl() { __readme_record curl "$@"; }
grpcurl() { __readme_record grpcurl "$@"; }
goose() { __readme_record goose "$@"; }
`

// readmeCall is one recorded command.
type readmeCall struct {
	cmd    string // normalized, with the README's addresses
	status int    // HTTP status (curl) or exit code
	out    []byte
}

// TestREADMEExamples runs every shell block of the README's "Try it" section
// against the test stack, as written except for the addresses (and the
// database URL of the goose block), and checks each command's status and
// answer: exactly (readmeWants, and every answer the README prints in a
// "# {...}" line), or by its key fields for large ones.
func TestREADMEExamples(t *testing.T) {
	root, err := stack.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme))
	if len(blocks) < 6 {
		t.Fatalf("found %d shell blocks under 'Try it', want at least 6", len(blocks))
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("curl is not installed, and the README's examples use it: apt-get install curl")
	}
	bin := installTools(t)
	gooseDB := readmeGooseDatabase(t)
	toStack := strings.NewReplacer(
		"127.0.0.1:8000", sys.Addrs.Gateway,
		"127.0.0.1:9093", sys.Addrs.GatewayMetrics,
		"127.0.0.1:50051", sys.Addrs.Catalog,
		"127.0.0.1:50052", sys.Addrs.Pricing,
		"127.0.0.1:8010", sys.Addrs.Issuer,
		"postgres://postgres@127.0.0.1:5432/carbuild?sslmode=disable", gooseDB,
	)
	toREADME := readmeAddrs(gooseDB)

	used := make([]bool, len(readmeWants))
	bound := map[string]string{}
	for i, block := range blocks {
		calls := runREADMEBlock(t, root, bin, i+1, block, toStack.Replace(block), toREADME)
		shown := shownAnswers(block)
		t.Logf("README block %d: %d commands, %d answers shown in the README", i+1, len(calls), len(shown))
		for _, c := range calls {
			c.cmd = unbind(c.cmd, bound)
			w := findWant(c.cmd, used, bound)
			if w < 0 {
				t.Errorf("README block %d runs %q, which has no expectation in readmeWants (add its status and answer)", i+1, c.cmd)
				continue
			}
			used[w] = true
			if err := readmeWants[w].match(c, bound); err != nil {
				t.Errorf("README block %d: %s: %v\n--- answer\n%s", i+1, c.cmd, err, c.out)
			}
			if name := readmeWants[w].bind; name != "" {
				bound[name] = strings.TrimSpace(string(c.out))
			}
			for j := range shown {
				if s := &shown[j]; !s.matched && s.runs(c.cmd) {
					s.matched = true
					if err := matchJSON(s.answer, c.out, nil); err != nil {
						t.Errorf("README block %d: %s: the answer is not the one the README shows: %v\n--- README\n%s\n--- answer\n%s", i+1, c.cmd, err, s.answer, c.out)
					}
					break
				}
			}
		}
		for _, s := range shown {
			if !s.matched {
				t.Errorf("README block %d shows an answer for %q, but no such command ran", i+1, s.line)
			}
		}
	}
	for i, w := range readmeWants {
		if !used[i] {
			t.Errorf("no README command is %q any more: update readmeWants with the README", normalizeCmd(w.cmd))
		}
	}
}

// runREADMEBlock runs one block (script has the stack's addresses) with the
// recorder and returns the commands it ran, with the README's addresses.
func runREADMEBlock(t *testing.T, root, bin string, n int, block, script string, toREADME *strings.Replacer) []readmeCall {
	t.Helper()
	rec := t.TempDir()
	if err := os.WriteFile(filepath.Join(rec, "seq"), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", readmeRecorder+script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "README_RECORD="+rec)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("README block %d failed: %v\n--- block\n%s\n--- output\n%s", n, err, block, out)
	}
	seq, err := os.ReadFile(filepath.Join(rec, "seq"))
	if err != nil {
		t.Fatal(err)
	}
	count, err := strconv.Atoi(strings.TrimSpace(string(seq)))
	if err != nil {
		t.Fatalf("recorder sequence %q: %v", seq, err)
	}
	var calls []readmeCall
	for i := 1; i <= count; i++ {
		read := func(ext string) []byte {
			b, err := os.ReadFile(filepath.Join(rec, fmt.Sprintf("%d.%s", i, ext)))
			if err != nil && ext != "out" { // curl writes no body when it cannot connect
				t.Fatalf("README block %d, command %d: %v", n, i, err)
			}
			return b
		}
		args := strings.Split(strings.TrimSuffix(string(read("args")), "\x00"), "\x00")
		c := readmeCall{cmd: normalizeCmd(toREADME.Replace(strings.Join(args, " "))), out: read("out")}
		code := read("rc")
		if args[0] == "curl" {
			code = read("status")
		}
		if c.status, err = strconv.Atoi(strings.TrimSpace(string(code))); err != nil {
			t.Fatalf("README block %d, %s: status %q: %v", n, c.cmd, code, err)
		}
		calls = append(calls, c)
	}
	return calls
}

// readmeAddrs maps the stack's addresses back to the README's; longer
// strings first, so that one address that is a prefix of another (port 4290
// and 42905) cannot capture it.
func readmeAddrs(gooseDB string) *strings.Replacer {
	pairs := [][2]string{
		{sys.Addrs.Gateway, "127.0.0.1:8000"},
		{sys.Addrs.GatewayMetrics, "127.0.0.1:9093"},
		{sys.Addrs.Issuer, "127.0.0.1:8010"},
		{sys.Addrs.Catalog, "127.0.0.1:50051"},
		{sys.Addrs.Pricing, "127.0.0.1:50052"},
		{gooseDB, "$DATABASE_URL"},
	}
	sort.Slice(pairs, func(i, j int) bool { return len(pairs[i][0]) > len(pairs[j][0]) })
	var flat []string
	for _, p := range pairs {
		flat = append(flat, p[0], p[1])
	}
	return strings.NewReplacer(flat...)
}

// normalizeCmd makes a command as the README writes it and as it ran
// comparable: shell quotes dropped, white space collapsed.
func normalizeCmd(s string) string {
	s = strings.NewReplacer(`'`, "", `"$DATABASE_URL"`, "$DATABASE_URL", "\\\n", " ").Replace(s)
	s = quotedHeaderRE.ReplaceAllString(s, "-H $1")
	return strings.Join(strings.Fields(s), " ")
}

// quotedHeaderRE is a header argument in double quotes (a README line
// quotes it for $VAR expansion; the tool sees it unquoted).
var quotedHeaderRE = regexp.MustCompile(`-H "([^"]*)"`)

// unbind writes the values earlier answers bound back as the README's
// $NAME, so that a command the README writes with a shell variable is
// recognised, whatever value the variable had in this run.
func unbind(cmd string, bound map[string]string) string {
	names := make([]string, 0, len(bound))
	for name := range bound {
		names = append(names, name)
	}
	// Longer values first: one value may contain another.
	sort.Slice(names, func(i, j int) bool { return len(bound[names[i]]) > len(bound[names[j]]) })
	for _, name := range names {
		if v := bound[name]; len(v) >= 8 {
			cmd = strings.ReplaceAll(cmd, v, "$"+name)
		}
	}
	return cmd
}

// freeVarRE is a $NAME in an expectation's command that no answer bound: a
// value the README makes itself (a random key), matched as a word.
var freeVarRE = regexp.MustCompile(`\$[A-Z][A-Z_]*`)

// findWant returns the first unused expectation for cmd, or -1.
func findWant(cmd string, used []bool, bound map[string]string) int {
	for i, w := range readmeWants {
		// A command's bound values are written back as $NAME (unbind).
		want := normalizeCmd(w.cmd)
		if used[i] {
			continue
		}
		if want == cmd {
			return i
		}
		var free []string
		var re strings.Builder
		re.WriteString("^")
		last := 0
		for _, loc := range freeVarRE.FindAllStringIndex(want, -1) {
			name := want[loc[0]+1 : loc[1]]
			if _, ok := bound[name]; ok {
				continue
			}
			re.WriteString(regexp.QuoteMeta(want[last:loc[0]]) + `([A-Za-z0-9_.~-]+)`)
			free, last = append(free, name), loc[1]
		}
		if len(free) > 0 {
			re.WriteString(regexp.QuoteMeta(want[last:]) + "$")
			if m := regexp.MustCompile(re.String()).FindStringSubmatch(cmd); m != nil {
				for k, name := range free {
					bound[name] = m[k+1]
				}
				return i
			}
		}
	}
	return -1
}

func (w readmeWant) match(c readmeCall, bound map[string]string) error {
	if c.status != w.status {
		return fmt.Errorf("status %d, want %d", c.status, w.status)
	}
	switch {
	case w.json != "":
		return matchJSON(w.json, c.out, bound)
	case w.lines != nil:
		got := strings.Split(strings.TrimRight(string(c.out), "\n"), "\n")
		if len(got) != len(w.lines) {
			return fmt.Errorf("%d lines, want %d", len(got), len(w.lines))
		}
		for i, re := range w.lines {
			if !regexp.MustCompile(re).MatchString(got[i]) {
				return fmt.Errorf("line %d %q does not match %s", i+1, got[i], re)
			}
		}
		return nil
	default:
		return w.check(c.out)
	}
}

var (
	uuidRE        = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	placeholderRE = regexp.MustCompile(`^<uuid(?::([A-Z_]+))?>$`)
	// tokenPlaceholderRE stands for an opaque random token (a receipt),
	// base64url, binding it to NAME when named.
	tokenPlaceholderRE = regexp.MustCompile(`^<token(?::([A-Z_]+))?>$`)
	tokenRE            = regexp.MustCompile(`^[A-Za-z0-9_-]{32,}$`)
)

// matchJSON compares an answer with the expected JSON value exactly, but for
// the placeholders described at readmeWant.json; bound (nil: no binding)
// holds the values <uuid:NAME> took.
func matchJSON(want string, got []byte, bound map[string]string) error {
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		return fmt.Errorf("expected answer is not JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		return fmt.Errorf("answer is not JSON: %v", err)
	}
	return matchValue("$", w, g, bound)
}

func matchValue(path string, want, got any, bound map[string]string) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, got)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				return fmt.Errorf("%s: unexpected field %q", path, k)
			}
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s: field %q missing", path, k)
			}
			if err := matchValue(path+"."+k, w[k], gv, bound); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %d elements", path, got, len(w))
		}
		for i := range w {
			if err := matchValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], bound); err != nil {
				return err
			}
		}
		return nil
	case string:
		g, ok := got.(string)
		if bound != nil && ok {
			if w == "<time>" {
				if _, err := time.Parse(time.RFC3339Nano, g); err != nil {
					return fmt.Errorf("%s: %q is not an RFC 3339 time", path, g)
				}
				return nil
			}
			if m := tokenPlaceholderRE.FindStringSubmatch(w); m != nil {
				if !tokenRE.MatchString(g) {
					return fmt.Errorf("%s: %q is not a random base64url token", path, g)
				}
				if name := m[1]; name != "" {
					bound[name] = g
				}
				return nil
			}
			if m := placeholderRE.FindStringSubmatch(w); m != nil {
				if !uuidRE.MatchString(g) {
					return fmt.Errorf("%s: %q is not a random UUID", path, g)
				}
				if name := m[1]; name != "" {
					if prev, ok := bound[name]; ok && prev != g {
						return fmt.Errorf("%s: %q, want %q (%s, the earlier answer's)", path, g, prev, name)
					}
					bound[name] = g
				}
				return nil
			}
		}
		if !ok || g != w {
			return fmt.Errorf("%s: got %#v, want %q", path, got, w)
		}
		return nil
	default:
		if fmt.Sprint(want) != fmt.Sprint(got) {
			return fmt.Errorf("%s: got %#v, want %#v", path, got, want)
		}
		return nil
	}
}

// checkOpenAPI checks that /openapi.json is a Swagger 2.0 document of every
// REST route and nothing else.
func checkOpenAPI(out []byte) error {
	var doc struct {
		Swagger string                    `json:"swagger"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if doc.Swagger != "2.0" {
		return fmt.Errorf("swagger %q, want 2.0", doc.Swagger)
	}
	var got []string
	for p, ops := range doc.Paths {
		for m := range ops {
			got = append(got, strings.ToUpper(m)+" "+p)
		}
	}
	slices.Sort(got)
	want := []string{"GET /health", "GET /v1/cars", "GET /v1/cars/{carId}/parts", "GET /v1/orders", "GET /v1/orders/{orderId}", "GET /v1/parts:batchGet",
		"PATCH /v1/admin/cars/{id}", "PATCH /v1/admin/parts/{id}",
		"POST /calcular", "POST /get-pecas", "POST /pagar",
		"POST /v1/admin/cars", "POST /v1/admin/cars/{id}:retire", "POST /v1/admin/parts", "POST /v1/admin/parts/{id}:retire",
		"POST /v1/orders", "POST /v1/quotes"}
	if !slices.Equal(got, want) {
		return fmt.Errorf("operations %q, want %q", got, want)
	}
	return nil
}

// checkGatewayMetrics checks that /metrics is the gateway's Prometheus text
// and counted the README's earlier calls by route.
func checkGatewayMetrics(out []byte) error {
	for _, re := range []string{
		`(?m)^# TYPE http_requests_total counter$`,
		`(?m)^carbuild_build_info\{[^}]*service="gateway"[^}]*\} 1$`,
		`(?m)^http_requests_total\{code="200",method="GET",route="/v1/cars"\} [1-9]\d*$`,
		`(?m)^http_requests_total\{code="404",method="GET",route="/v1/cars/\{car_id\}/parts"\} [1-9]\d*$`,
	} {
		if !regexp.MustCompile(re).Match(out) {
			return fmt.Errorf("no line matches %s", re)
		}
	}
	return nil
}

// shownAnswer is an answer the README prints in a "# {...}" line, under
// the command line that gives it.
type shownAnswer struct {
	line    string // normalized
	answer  string
	matched bool
}

// runs reports whether cmd (normalized) is the line's command: the whole
// line, or its first command (`until curl ...; do ...`, `curl ... | sed`).
func (s shownAnswer) runs(cmd string) bool {
	line := strings.TrimPrefix(strings.TrimPrefix(s.line, "until "), "while ")
	return line == cmd || strings.HasPrefix(line, cmd+";") || strings.HasPrefix(line, cmd+" |")
}

// shownAnswers returns the answers a block prints, in order.
func shownAnswers(block string) []shownAnswer {
	var shown []shownAnswer
	prev := ""
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(line, "# {") {
			shown = append(shown, shownAnswer{line: normalizeCmd(prev), answer: strings.TrimPrefix(line, "# ")})
			continue
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	return shown
}

// readmeBlocks returns the shell blocks under "## Try it" and fails for any
// other shell block that readmeNotRun does not account for.
func readmeBlocks(t *testing.T, md string) []string {
	t.Helper()
	var run []string
	section := ""
	seen := map[string]bool{}
	fence := regexp.MustCompile("(?s)```(sh|bash)\n(.*?)```")
	for _, m := range fence.FindAllStringSubmatchIndex(md, -1) {
		before := md[:m[0]]
		if i := strings.LastIndex(before, "\n## "); i >= 0 {
			section = strings.TrimSpace(strings.SplitN(before[i+1:], "\n", 2)[0])
		}
		block := md[m[4]:m[5]]
		if section == "## Try it" {
			run = append(run, block)
			continue
		}
		first := strings.SplitN(block, "\n", 2)[0]
		if _, ok := readmeNotRun[first]; !ok {
			t.Errorf("README shell block under %q starting %q is neither run (only blocks under \"## Try it\" are) nor listed in readmeNotRun with the reason", section, first)
		}
		seen[first] = true
	}
	for first := range readmeNotRun {
		if !seen[first] {
			t.Errorf("readmeNotRun lists %q, which is no longer a README block", first)
		}
	}
	return run
}

// installTools installs the README's CLIs (readmeTools) once into a cache
// folder named for their versions, as scripts/generate.sh caches the protoc
// plugins; a tool that cannot be installed fails the test with the reason.
func installTools(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(cache, "carbuild", "tools", "readme-grpcurl1.9.3-goose3.30.0")
	for name, args := range readmeTools {
		if _, err := os.Stat(filepath.Join(bin, name)); err == nil {
			continue
		}
		start := time.Now()
		cmd := exec.Command("go", append([]string{"install"}, args...)...)
		cmd.Env = append(os.Environ(), "GOBIN="+bin, "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("the README's examples need %s, and installing it failed (go install %s, which needs the Go module proxy): %v\n%s",
				name, strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		t.Logf("installed %s into %s in %s", name, bin, time.Since(start).Round(time.Second))
	}
	return bin
}

// readmeGooseDatabase makes a migrated database of its own, on the stack's
// server, for the README's goose block: its "down" drops the newest
// migration and "up" re-creates it, which must not happen under the running
// stack (migration 00005 re-creates catalog.revision at 1, below the
// revision the catalog already knows). It is dropped when the test ends.
func readmeGooseDatabase(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, sys.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	name := fmt.Sprintf("carbuild_readme_goose_%d_%s", os.Getpid(), randomHex(t))
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := pgx.Connect(ctx, sys.DatabaseURL)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer admin.Close(context.Background())
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	dsn, err := pgboot.DatabaseURL(sys.DatabaseURL, name)
	if err != nil {
		t.Fatal(err)
	}
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	return dsn
}

// readmeGooseWants are the answers of the README's goose block (status, up,
// down, up) on a database migrated with every embedded migration: the
// newest one is the one "down" undoes and "up" applies again.
func readmeGooseWants() []readmeWant {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(names) == 0 {
		panic(fmt.Sprintf("embedded migrations: %v (%d files)", err, len(names)))
	}
	sort.Strings(names)
	newest := names[len(names)-1]
	version := strings.TrimLeft(strings.SplitN(newest, "_", 2)[0], "0")
	applied := func(name string) string {
		return readmeTimeRE + `\s+\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} -- ` + regexp.QuoteMeta(name) + `$`
	}
	ok := readmeTimeRE + `OK\s+` + regexp.QuoteMeta(newest) + ` \(\d+(\.\d+)?m?s\)$`
	status := []string{readmeTimeRE + `\s+Applied At\s+Migration$`, readmeTimeRE + `\s+=+$`}
	for _, n := range names {
		status = append(status, applied(n))
	}
	const goose = `goose -dir migrations postgres "$DATABASE_URL" `
	return []readmeWant{
		{cmd: goose + `status`, lines: status},
		{cmd: goose + `up`, lines: []string{readmeTimeRE + `goose: no migrations to run\. current version: ` + version + `$`}},
		{cmd: goose + `down`, lines: []string{ok}},
		{cmd: goose + `up`, lines: []string{ok, readmeTimeRE + `goose: successfully migrated database to version: ` + version + `$`}},
	}
}

// checkJWT checks that a dev issuer's answer is one compact JWT (header,
// claims, signature, base64url).
func checkJWT(out []byte) error {
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`).Match(bytes.TrimSpace(out)) {
		return fmt.Errorf("not a compact JWT: %.80q", out)
	}
	return nil
}

// checkOrderList checks a page of the caller's orders: at least one, every
// one confirmed with an id and a total, newest first.
func checkOrderList(out []byte) error {
	var page struct {
		Orders []struct {
			ID, Status, CreateTime string
			Total                  struct{ MinorUnits string }
		}
	}
	if err := json.Unmarshal(out, &page); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if len(page.Orders) == 0 {
		return errors.New("no orders, want the caller's orders")
	}
	for i, o := range page.Orders {
		if !uuidRE.MatchString(o.ID) || o.Status != "ORDER_STATUS_CONFIRMED" || o.Total.MinorUnits == "" {
			return fmt.Errorf("order %d: %+v, want a confirmed order with an id and a total", i, o)
		}
		if i > 0 && o.CreateTime > page.Orders[i-1].CreateTime {
			return fmt.Errorf("order %d (%s) is newer than order %d (%s): want newest first", i, o.CreateTime, i-1, page.Orders[i-1].CreateTime)
		}
	}
	return nil
}
