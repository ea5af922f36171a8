package fault

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

// TestLeastPrivilegeRoles checks the group roles of migrations 00004 and
// 00008: a login role in carbuild_catalog_reader can read the catalog,
// change cars and parts column by column (no ids, no deletes) and append to
// the audit trail, and nothing else; one in carbuild_orders_writer can read
// and insert orders and nothing else (no UPDATE/DELETE, no catalog). Then it
// runs the real catalog and pricing as those login roles, places an order
// and makes an operator's catalog changes through the gateway: the services
// need no more than that.
func TestLeastPrivilegeRoles(t *testing.T) {
	s := startStack(t, stackConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	admin := connect(t, s.DatabaseURL)
	reader := loginRole(t, admin, s.DatabaseURL, "carbuild_catalog_reader")
	writer := loginRole(t, admin, s.DatabaseURL, "carbuild_orders_writer")

	const order = `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency, subtotal_minor, shipping_minor, total_minor)
VALUES (gen_random_uuid(), $1, '\x01', 'CONFIRMED', 'BRL', 800000, 2000, 802000)`
	checks := []struct {
		name    string
		dsn     string
		sql     string
		args    []any
		allowed bool
	}{
		{"reader reads parts", reader, `SELECT count(*) FROM catalog.parts`, nil, true},
		{"reader reads cars", reader, `SELECT count(*) FROM catalog.cars`, nil, true},
		// The management API (00008): the catalog changes cars and parts
		// column by column and only appends to the audit trail.
		{"catalog changes prices", reader, `UPDATE catalog.parts SET price_minor = price_minor, version = version + 1 WHERE id = 20`, nil, true},
		{"catalog cannot change part ids", reader, `UPDATE catalog.parts SET id = id WHERE id = 20`, nil, false},
		{"catalog cannot move parts", reader, `UPDATE catalog.parts SET car_id = car_id WHERE id = 20`, nil, false},
		{"catalog cannot choose part ids", reader, `INSERT INTO catalog.parts (id, car_id, name, category, price_minor) VALUES (900, 'civic', 'x', 'hood', 1)`, nil, false},
		{"catalog cannot delete parts", reader, `DELETE FROM catalog.parts WHERE id = 20`, nil, false},
		{"catalog cannot delete cars", reader, `DELETE FROM catalog.cars`, nil, false},
		{"catalog appends audit rows", reader, `INSERT INTO catalog.audit (actor, action, entity, entity_id, before, after) VALUES ('fault', 'update', 'part', '20', '{}', '{}')`, nil, true},
		{"catalog cannot read the audit trail", reader, `SELECT count(*) FROM catalog.audit`, nil, false},
		{"catalog cannot rewrite the audit trail", reader, `UPDATE catalog.audit SET actor = 'x'`, nil, false},
		{"catalog cannot delete the audit trail", reader, `DELETE FROM catalog.audit`, nil, false},
		{"reader cannot read orders", reader, `SELECT count(*) FROM orders.orders`, nil, false},
		{"reader cannot write orders", reader, order, []any{"reader-" + randomKey(4)}, false},
		{"writer inserts orders", writer, order, []any{"writer-" + randomKey(4)}, true},
		{"writer reads orders", writer, `SELECT count(*) FROM orders.orders`, nil, true},
		{"writer reads lines", writer, `SELECT count(*) FROM orders.order_lines`, nil, true},
		{"writer cannot update orders", writer, `UPDATE orders.orders SET total_minor = 0, subtotal_minor = 0, shipping_minor = 0`, nil, false},
		{"writer cannot delete orders", writer, `DELETE FROM orders.orders`, nil, false},
		{"writer cannot read the catalog", writer, `SELECT count(*) FROM catalog.parts`, nil, false},
		{"writer cannot change prices", writer, `UPDATE catalog.parts SET price_minor = 1`, nil, false},
		{"writer cannot create tables", writer, `CREATE TABLE orders.x (id int)`, nil, false},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			conn := connect(t, c.dsn)
			_, err := conn.Exec(ctx, c.sql, c.args...)
			var pgErr *pgconn.PgError
			switch {
			case c.allowed && err != nil:
				t.Errorf("%s: %v, want allowed", c.sql, err)
			case !c.allowed && (!errors.As(err, &pgErr) || pgErr.Code != "42501"):
				t.Errorf("%s: got %v, want permission denied (42501)", c.sql, err)
			}
		})
	}

	// The real services as those roles: catalog reads (and LISTENs), pricing
	// stores orders; the gateway keeps running and reconnects.
	for _, name := range []string{"pricing", "catalog"} {
		if err := s.StopService(name, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	// The catalog verifies tokens, for the management API below.
	startProc(t, "catalog", "DATABASE_URL="+reader, "CATALOG_GRPC_ADDR="+s.Addrs.Catalog, "CATALOG_METRICS_ADDR="+s.Addrs.CatalogMetrics,
		"AUTH_ISSUER="+s.Issuer.URL(), "AUTH_AUDIENCE="+s.Issuer.Audience())
	startProc(t, "pricing", "DATABASE_URL="+writer, "PRICING_GRPC_ADDR="+s.Addrs.Pricing, "PRICING_METRICS_ADDR="+s.Addrs.PricingMetrics, "CATALOG_ADDR="+s.Addrs.Catalog)
	client := &http.Client{Timeout: 10 * time.Second}
	// The gateway reconnects to each restarted backend on its own schedule
	// (gRPC backoff: about 1 s, growing), and a quote succeeding says nothing
	// about the gateway's own catalog connection: wait for each call to be
	// answered 200 (an order is retried with its idempotency key, so it is
	// still placed once), failing only after loadBound.
	start := time.Now()
	for _, c := range []call{
		{method: "GET", path: "/v1/cars"},
		{method: "GET", path: "/v1/cars/corolla/parts?page_size=2"},
		{method: "POST", path: "/get-pecas", body: `{"modelo":"Civic","ano":2023}`},
		{method: "POST", path: "/v1/quotes", body: `{"items":[{"partId":"8","quantity":1}]}`},
		orderCall(randomKey(8)),
	} {
		var status int
		var body string
		if !waitFor(loadBound, func() bool {
			req, err := c.request(s.GatewayURL)
			if err != nil {
				status, body = 0, err.Error()
				return false
			}
			resp, err := client.Do(req)
			if err != nil {
				status, body = 0, err.Error()
				return false
			}
			status, body = resp.StatusCode, readAll(resp)
			resp.Body.Close()
			return status == http.StatusOK
		}) {
			t.Errorf("%s %s as least-privilege roles: %d %s (%v after the restart)", c.method, c.path, status, body, loadBound)
		}
	}
	t.Logf("roles: every call answered 200 %s after catalog and pricing restarted as login roles", time.Since(start).Round(time.Millisecond))

	// An operator's changes through the gateway: the catalog's login role
	// can make each of them, with its audit row.
	tok, err := s.Issuer.Token(devissuer.Claims{Subject: "fault-olga", Roles: []string{auth.RoleOperator}})
	if err != nil {
		t.Fatal(err)
	}
	car := "roles-" + strings.ToLower(randomKey(6))
	op := map[string]string{"Authorization": "Bearer " + tok}
	var partID string
	for _, c := range []call{
		{method: "POST", path: "/v1/admin/cars", body: `{"id":"` + car + `","name":"` + car + `","firstYear":2020,"lastYear":2020}`},
		{method: "POST", path: "/v1/admin/parts", body: `{"carId":"` + car + `","name":"Farol","category":"PART_CATEGORY_HEADLIGHT","price":{"currencyCode":"BRL","minorUnits":"100"}}`},
		{method: "PATCH", path: "/v1/admin/parts/{part}", body: `{"price":{"currencyCode":"BRL","minorUnits":"200"},"expectedVersion":"1"}`},
		{method: "POST", path: "/v1/admin/parts/{part}:retire", body: `{}`},
		{method: "PATCH", path: "/v1/admin/cars/" + car, body: `{"name":"Renamed ` + car + `"}`},
		{method: "POST", path: "/v1/admin/cars/" + car + ":retire", body: `{}`},
	} {
		c.path, c.headers = strings.Replace(c.path, "{part}", partID, 1), op
		req, err := c.request(s.GatewayURL)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", c.method, c.path, err)
		}
		body := readAll(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s %s as the catalog's login role = %d %s", c.method, c.path, resp.StatusCode, body)
		}
		if partID == "" && strings.Contains(c.path, "/parts") {
			var created struct{ Part struct{ ID string } }
			if err := json.Unmarshal([]byte(body), &created); err != nil || created.Part.ID == "" {
				t.Fatalf("created part: %s (%v)", body, err)
			}
			partID = created.Part.ID
		}
	}
	var rows int
	if err := admin.QueryRow(ctx, `SELECT count(*) FROM catalog.audit WHERE actor = 'fault-olga'`).Scan(&rows); err != nil || rows != 6 {
		t.Errorf("audit rows of the operator's changes = %d, %v; want 6", rows, err)
	}
	t.Logf("roles: %d privilege checks; catalog and pricing served reads, a quote, an order and 6 operator changes (with their audit rows) as login roles in carbuild_catalog_reader / carbuild_orders_writer", len(checks))

}

// loginRole creates a login role (with a password, so it also works where
// the server checks passwords) in group, dropped at cleanup, and returns a
// DSN for it.
func loginRole(t *testing.T, admin *pgx.Conn, dsn, group string) string {
	t.Helper()
	ctx := context.Background()
	name := strings.ReplaceAll(strings.ToLower(randomKey(5)), "-", "_") + "_" + strings.TrimPrefix(group, "carbuild_")
	password := randomKey(12)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+pgx.Identifier{name}.Sanitize()+" LOGIN PASSWORD '"+password+"' IN ROLE "+pgx.Identifier{group}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP ROLE "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop role %s: %v", name, err)
		}
	})
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(name, password)
	return u.String()
}
