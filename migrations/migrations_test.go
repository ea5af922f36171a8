package migrations_test

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/pressly/goose/v3"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// dbState summarises what the migrations create, to compare states.
type dbState struct {
	Version int64
	Schemas []string // catalog, orders when present
	Tables  []string // schema.table, excluding goose's table
	Parts   int
	Cars    int
}

func readState(t *testing.T, ctx context.Context, db *sql.DB) dbState {
	t.Helper()
	p, err := migrations.NewProvider(db)
	if err != nil {
		t.Fatal(err)
	}
	var s dbState
	if s.Version, err = p.GetDBVersion(ctx); err != nil {
		t.Fatal(err)
	}
	s.Schemas = queryStrings(t, ctx, db, `SELECT nspname FROM pg_namespace
		WHERE nspname IN ('catalog', 'orders') ORDER BY 1`)
	s.Tables = queryStrings(t, ctx, db, `SELECT schemaname || '.' || tablename FROM pg_tables
		WHERE schemaname NOT IN ('pg_catalog', 'information_schema') AND tablename <> 'goose_db_version'
		ORDER BY 1`)
	if slices.Contains(s.Tables, "catalog.parts") {
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM catalog.parts").Scan(&s.Parts); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM catalog.cars").Scan(&s.Cars); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func queryStrings(t *testing.T, ctx context.Context, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	stateEmpty   = dbState{Version: 0}
	stateCatalog = dbState{Version: 1, Schemas: []string{"catalog"}, Tables: []string{"catalog.cars", "catalog.parts"}}
	stateOrders  = dbState{Version: 2, Schemas: []string{"catalog", "orders"},
		Tables: []string{"catalog.cars", "catalog.parts", "orders.order_lines", "orders.orders"}}
	stateSeeded = dbState{Version: 3, Schemas: stateOrders.Schemas, Tables: stateOrders.Tables, Parts: 20, Cars: 3}
	// stateRoles adds the least-privilege grants (roles are cluster-wide).
	stateRoles = dbState{Version: 4, Schemas: stateSeeded.Schemas, Tables: stateSeeded.Tables, Parts: 20, Cars: 3}
	// stateRevision adds catalog.revision, bumped by the catalog_changed trigger.
	stateRevision = dbState{Version: 5, Schemas: stateSeeded.Schemas,
		Tables: []string{"catalog.cars", "catalog.parts", "catalog.revision", "orders.order_lines", "orders.orders"}, Parts: 20, Cars: 3}
	// stateRevoked takes EXECUTE on the SECURITY DEFINER trigger function
	// from PUBLIC (a privilege, not visible in dbState).
	stateRevoked = dbState{Version: 6, Schemas: stateRevision.Schemas, Tables: stateRevision.Tables, Parts: 20, Cars: 3}
	// stateOwner adds orders.customer_id, per-customer idempotency keys and
	// orders.order_receipts.
	stateOwner = dbState{Version: 7, Schemas: stateSeeded.Schemas,
		Tables: []string{"catalog.cars", "catalog.parts", "catalog.revision", "orders.order_lines", "orders.order_receipts", "orders.orders"}, Parts: 20, Cars: 3}
	// stateAdmin adds catalog.audit (and soft delete, versions, the
	// service's write grants: not visible in dbState).
	stateAdmin = dbState{Version: 8, Schemas: stateSeeded.Schemas,
		Tables: []string{"catalog.audit", "catalog.cars", "catalog.parts", "catalog.revision", "orders.order_lines", "orders.order_receipts", "orders.orders"}, Parts: 20, Cars: 3}
	stateLatest = stateAdmin
)

// TestUpDownUp applies every migration, rolls them back one at a time to
// zero checking each intermediate state, and applies them again.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := openDB(t, dbtest.NewEmpty(t))

	if diff := cmp.Diff(stateEmpty, readState(t, ctx, db)); diff != "" {
		t.Fatalf("fresh database (-want +got):\n%s", diff)
	}
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateLatest, readState(t, ctx, db)); diff != "" {
		t.Fatalf("after up (-want +got):\n%s", diff)
	}
	for _, want := range []dbState{stateOwner, stateRevoked, stateRevision, stateRoles, stateSeeded, stateOrders, stateCatalog, stateEmpty} {
		if err := migrations.Down(ctx, db); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, readState(t, ctx, db)); diff != "" {
			t.Fatalf("after down to %d (-want +got):\n%s", want.Version, diff)
		}
	}
	// Nothing of ours may survive a full rollback: no functions, no sequences.
	if left := queryStrings(t, ctx, db, `SELECT n.nspname || '.' || p.proname FROM pg_proc p
		JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname IN ('catalog', 'orders')`); len(left) > 0 {
		t.Errorf("functions left after down: %v", left)
	}
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatalf("up again: %v", err)
	}
	if diff := cmp.Diff(stateLatest, readState(t, ctx, db)); diff != "" {
		t.Fatalf("after up again (-want +got):\n%s", diff)
	}
	if err := migrations.DownTo(ctx, db, 0); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateEmpty, readState(t, ctx, db)); diff != "" {
		t.Fatalf("after down-to 0 (-want +got):\n%s", diff)
	}
}

// TestSeedDownUp rolls back only the seed and applies it again: the seed's
// down removes exactly the seed, and re-seeding keeps the id sequence sane.
func TestSeedDownUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := dbtest.New(t)
	db := openDB(t, dsn)

	// A part added by an operator after the seed gets id 21.
	var id int64
	if err := db.QueryRowContext(ctx, `INSERT INTO catalog.parts (car_id, name, category, price_minor)
		VALUES ('civic', 'Aerofólio', 'spoiler', 1) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 21 {
		t.Errorf("first part after the seed: got id %d, want 21", id)
	}
	// It depends on a seeded car, so the seed's down must refuse rather than
	// silently delete it.
	if err := migrations.DownTo(ctx, db, 3); err != nil { // the revision and the grants first
		t.Fatal(err)
	}
	if err := migrations.Down(ctx, db); err == nil {
		t.Fatal("seed down with a dependent non-seed part: got nil error, want a foreign key violation")
	}
	if _, err := db.ExecContext(ctx, "DELETE FROM catalog.parts WHERE id = $1", id); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Down(ctx, db); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(stateOrders, readState(t, ctx, db)); diff != "" {
		t.Fatalf("after seed down (-want +got):\n%s", diff)
	}
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRowContext(ctx, `INSERT INTO catalog.parts (car_id, name, category, price_minor)
		VALUES ('civic', 'Aerofólio', 'spoiler', 1) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if id != 22 {
		t.Errorf("first part after re-seeding: got id %d, want 22 (sequences never go back)", id)
	}
}

type seedPart struct {
	ID       int64
	CarID    string
	Name     string
	Category string
	Price    int64 // centavos
	Currency string
}

// TestSeed checks the seed against docs/architecture.md: the earlier system's cars,
// parts, ids and prices (R$ → centavos).
func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)

	type car struct {
		ID, Name            string
		FirstYear, LastYear int
	}
	wantCars := []car{
		{"civic", "Civic", 2023, 2023},
		{"corolla", "Corolla", 2020, 2020},
		{"fusca", "Fusca", 2014, 2014},
	}
	rows, _ := pool.Query(ctx, "SELECT id, name, first_year, last_year FROM catalog.cars ORDER BY id")
	gotCars, err := pgx.CollectRows(rows, pgx.RowToStructByPos[car])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantCars, gotCars); diff != "" {
		t.Errorf("cars (-want +got):\n%s", diff)
	}

	wantParts := []seedPart{
		{1, "fusca", "Chassi", "chassis", 500000, "BRL"},
		{2, "fusca", "Motor 1.6", "engine", 350000, "BRL"},
		{3, "fusca", "Rodas Aro 14", "wheels", 80000, "BRL"},
		{4, "fusca", "Farol Dianteiro", "headlight", 15000, "BRL"},
		{5, "fusca", "Parachoque Traseiro", "bumper", 20000, "BRL"},
		{6, "fusca", "Capô", "hood", 35000, "BRL"},
		{7, "civic", "Chassi", "chassis", 800000, "BRL"},
		{8, "civic", "Motor 2.0 VTEC", "engine", 650000, "BRL"},
		{9, "civic", "Rodas Aro 16", "wheels", 120000, "BRL"},
		{10, "civic", "Farol LED", "headlight", 35000, "BRL"},
		{11, "civic", "Parachoque Esportivo", "bumper", 45000, "BRL"},
		{12, "civic", "Capô Esportivo", "hood", 60000, "BRL"},
		{13, "civic", "Spoiler", "spoiler", 30000, "BRL"},
		{14, "corolla", "Chassi", "chassis", 750000, "BRL"},
		{15, "corolla", "Motor 1.8 Hybrid", "engine", 700000, "BRL"},
		{16, "corolla", "Rodas Aro 15", "wheels", 90000, "BRL"},
		{17, "corolla", "Farol Xenon", "headlight", 28000, "BRL"},
		{18, "corolla", "Parachoque Híbrido", "bumper", 40000, "BRL"},
		{19, "corolla", "Capô Aerodinâmico", "hood", 50000, "BRL"},
		{20, "corolla", "Sistema Híbrido", "hybrid_system", 200000, "BRL"},
	}
	rows, _ = pool.Query(ctx, "SELECT id, car_id, name, category, price_minor, currency FROM catalog.parts ORDER BY id")
	gotParts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[seedPart])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantParts, gotParts); diff != "" {
		t.Errorf("parts (-want +got):\n%s", diff)
	}

	// The order rule "at most one chassis" relies on every car having
	// exactly one.
	rows, _ = pool.Query(ctx, `SELECT c.id, count(p.id) FILTER (WHERE p.category = 'chassis')
		FROM catalog.cars c LEFT JOIN catalog.parts p ON p.car_id = c.id GROUP BY c.id ORDER BY c.id`)
	type chassisCount struct {
		CarID string
		N     int64
	}
	gotChassis, err := pgx.CollectRows(rows, pgx.RowToStructByPos[chassisCount])
	if err != nil {
		t.Fatal(err)
	}
	wantChassis := []chassisCount{{"civic", 1}, {"corolla", 1}, {"fusca", 1}}
	if diff := cmp.Diff(wantChassis, gotChassis); diff != "" {
		t.Errorf("chassis per car (-want +got):\n%s", diff)
	}

	// The seed-compatible API matches models case-insensitively.
	var id string
	if err := pool.QueryRow(ctx, "SELECT id FROM catalog.cars WHERE lower(name) = lower($1)", "CIVIC").Scan(&id); err != nil || id != "civic" {
		t.Errorf("car by name CIVIC: got %q, %v; want civic", id, err)
	}
}

const validOrder = `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency,
	subtotal_minor, shipping_minor, total_minor)
	VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 'key-1', '\x01', 'CONFIRMED', 'BRL', 800000, 2000, 802000)`

// TestConstraints checks that the schema rejects bad data, each case in a
// transaction that is rolled back, after a valid control statement.
func TestConstraints(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)

	tests := []struct {
		name           string
		setup          []string
		stmt           string
		wantCode       string // SQLSTATE; "" = must succeed
		wantConstraint string
	}{
		{
			name: "valid part",
			stmt: `INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('fusca', 'Retrovisor', 'bumper', 0)`,
		},
		{
			name:           "negative price",
			stmt:           `INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('fusca', 'X', 'hood', -1)`,
			wantCode:       "23514",
			wantConstraint: "parts_price_not_negative",
		},
		{
			name:           "price update to negative",
			stmt:           `UPDATE catalog.parts SET price_minor = -100 WHERE id = 1`,
			wantCode:       "23514",
			wantConstraint: "parts_price_not_negative",
		},
		{
			name:           "unknown category",
			stmt:           `INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('fusca', 'X', 'Chassi', 1)`,
			wantCode:       "23514",
			wantConstraint: "parts_category_known",
		},
		{
			name:           "part of unknown car",
			stmt:           `INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('gol', 'X', 'hood', 1)`,
			wantCode:       "23503",
			wantConstraint: "parts_car_id_fkey",
		},
		{
			name:           "lowercase currency",
			stmt:           `INSERT INTO catalog.parts (car_id, name, category, price_minor, currency) VALUES ('fusca', 'X', 'hood', 1, 'brl')`,
			wantCode:       "23514",
			wantConstraint: "parts_currency_iso",
		},
		{
			name:           "blank part name",
			stmt:           `INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('fusca', '  ', 'hood', 1)`,
			wantCode:       "23514",
			wantConstraint: "parts_name_not_blank",
		},
		{
			name: "valid car",
			stmt: `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol-g5', 'Gol G5', 2008, 2013)`,
		},
		{
			name:           "car slug with capitals",
			stmt:           `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('Gol', 'Gol', 2008, 2013)`,
			wantCode:       "23514",
			wantConstraint: "cars_id_slug",
		},
		{
			name:           "car slug with a space",
			stmt:           `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol g5', 'Gol', 2008, 2013)`,
			wantCode:       "23514",
			wantConstraint: "cars_id_slug",
		},
		{
			name:           "car name already used in another case",
			stmt:           `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('civic-2', 'CIVIC', 2023, 2023)`,
			wantCode:       "23505",
			wantConstraint: "cars_name_lower_key",
		},
		{
			name:           "years out of order",
			stmt:           `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol', 'Gol', 2013, 2008)`,
			wantCode:       "23514",
			wantConstraint: "cars_years_ordered",
		},
		{
			name:           "year out of range",
			stmt:           `INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol', 'Gol', 13, 2008)`,
			wantCode:       "23514",
			wantConstraint: "cars_first_year_range",
		},
		{
			name:  "valid order with a line",
			setup: []string{validOrder},
			stmt: `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity,
				unit_price_minor, line_total_minor)
				VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 7, 'Chassi', 'chassis', 1, 800000, 800000)`,
		},
		{
			name: "total is not subtotal plus shipping",
			stmt: `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES (gen_random_uuid(), 'key-2', '\x01', 'CONFIRMED', 'BRL', 800000, 2000, 800000)`,
			wantCode:       "23514",
			wantConstraint: "orders_total_is_sum",
		},
		{
			name:  "duplicate idempotency key",
			setup: []string{validOrder},
			stmt: `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES (gen_random_uuid(), 'key-1', '\x02', 'CONFIRMED', 'BRL', 0, 0, 0)`,
			wantCode:       "23505",
			wantConstraint: "orders_customer_idempotency_key",
		},
		{
			name:  "duplicate idempotency key of one customer",
			setup: []string{strings.Replace(strings.Replace(validOrder, "(id, ", "(customer_id, id, ", 1), "VALUES (", "VALUES ('alice', ", 1)},
			stmt: `INSERT INTO orders.orders (customer_id, id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES ('alice', gen_random_uuid(), 'key-1', '\x02', 'CONFIRMED', 'BRL', 0, 0, 0)`,
			wantCode:       "23505",
			wantConstraint: "orders_customer_idempotency_key",
		},
		{
			name: "blank customer",
			stmt: `INSERT INTO orders.orders (customer_id, id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES (' ', gen_random_uuid(), 'key-9', '\x02', 'CONFIRMED', 'BRL', 0, 0, 0)`,
			wantCode:       "23514",
			wantConstraint: "orders_customer_id_not_blank",
		},
		{
			name: "unknown status",
			stmt: `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES (gen_random_uuid(), 'key-3', '\x01', 'CONFIRMADO', 'BRL', 0, 0, 0)`,
			wantCode:       "23514",
			wantConstraint: "orders_status_known",
		},
		{
			name: "negative shipping",
			stmt: `INSERT INTO orders.orders (id, idempotency_key, request_hash, status, currency,
				subtotal_minor, shipping_minor, total_minor)
				VALUES (gen_random_uuid(), 'key-4', '\x01', 'CONFIRMED', 'BRL', 100, -100, 0)`,
			wantCode:       "23514",
			wantConstraint: "orders_shipping_not_negative",
		},
		{
			name:  "line total is not unit price times quantity",
			setup: []string{validOrder},
			stmt: `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity,
				unit_price_minor, line_total_minor)
				VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 7, 'Chassi', 'chassis', 2, 800000, 800000)`,
			wantCode:       "23514",
			wantConstraint: "order_lines_total_is_product",
		},
		{
			name:  "zero quantity",
			setup: []string{validOrder},
			stmt: `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity,
				unit_price_minor, line_total_minor)
				VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 7, 'Chassi', 'chassis', 0, 800000, 0)`,
			wantCode:       "23514",
			wantConstraint: "order_lines_quantity_positive",
		},
		{
			name: "line of unknown order",
			stmt: `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity,
				unit_price_minor, line_total_minor)
				VALUES (gen_random_uuid(), 1, 7, 'Chassi', 'chassis', 1, 800000, 800000)`,
			wantCode:       "23503",
			wantConstraint: "order_lines_order_id_fkey",
		},
		{
			name: "duplicate line number",
			setup: []string{validOrder, `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name,
				category, quantity, unit_price_minor, line_total_minor)
				VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 7, 'Chassi', 'chassis', 1, 800000, 800000)`},
			stmt: `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name, category, quantity,
				unit_price_minor, line_total_minor)
				VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 8, 'Motor', 'engine', 1, 1, 1)`,
			wantCode:       "23505",
			wantConstraint: "order_lines_pkey",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			for _, s := range tt.setup {
				if _, err := tx.Exec(ctx, s); err != nil {
					t.Fatalf("setup %q: %v", s, err)
				}
			}
			_, err = tx.Exec(ctx, tt.stmt)
			var pgErr *pgconn.PgError
			switch {
			case tt.wantCode == "" && err != nil:
				t.Fatalf("got error %v, want success", err)
			case tt.wantCode == "":
			case !errors.As(err, &pgErr):
				t.Fatalf("got error %v, want SQLSTATE %s on %s", err, tt.wantCode, tt.wantConstraint)
			case pgErr.Code != tt.wantCode || pgErr.ConstraintName != tt.wantConstraint:
				t.Fatalf("got SQLSTATE %s on %q (%s), want %s on %q",
					pgErr.Code, pgErr.ConstraintName, pgErr.Message, tt.wantCode, tt.wantConstraint)
			}
		})
	}
}

// TestOrderCascade checks that deleting an order deletes its lines.
func TestOrderCascade(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)
	for _, s := range []string{validOrder, `INSERT INTO orders.order_lines (order_id, line_no, part_id, part_name,
		category, quantity, unit_price_minor, line_total_minor)
		VALUES ('6c1f3a2e-0000-4000-8000-000000000001', 1, 7, 'Chassi', 'chassis', 1, 800000, 800000)`,
		`DELETE FROM orders.orders`} {
		if _, err := pool.Exec(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM orders.order_lines").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("lines after deleting their order: got %d, want 0", n)
	}
}

// TestCatalogChangedNotify checks that every kind of write to cars and parts
// bumps catalog.revision once per transaction and signals catalog_changed on
// commit, once per transaction, with the new revision as payload; and that
// other writes and rolled-back ones do neither.
func TestCatalogChangedNotify(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := dbtest.New(t)
	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close(context.Background()) })
	if _, err := listener.Exec(ctx, "LISTEN catalog_changed"); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	revision := func() int64 {
		t.Helper()
		var n int64
		if err := pool.QueryRow(ctx, "SELECT n FROM catalog.revision").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if got := revision(); got != 1 {
		t.Fatalf("revision of a fresh database: got %d, want 1", got)
	}

	var before time.Time
	if err := pool.QueryRow(ctx, "SELECT updated_at FROM catalog.parts WHERE id = 8").Scan(&before); err != nil {
		t.Fatal(err)
	}

	// Sequential: each case's notification must be consumed before the next.
	tests := []struct {
		name       string
		stmts      []string // run in one transaction
		rollback   bool     // roll the transaction back instead of committing
		wantNotify bool
	}{
		{name: "update part price", stmts: []string{"UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 8"}, wantNotify: true},
		{name: "insert car", stmts: []string{"INSERT INTO catalog.cars VALUES ('gol', 'Gol', 2008, 2013)"}, wantNotify: true},
		{name: "insert and delete parts in one transaction", stmts: []string{
			"INSERT INTO catalog.parts (car_id, name, category, price_minor) VALUES ('gol', 'Chassi', 'chassis', 1)",
			"DELETE FROM catalog.parts WHERE car_id = 'gol'",
		}, wantNotify: true},
		{name: "delete car", stmts: []string{"DELETE FROM catalog.cars WHERE id = 'gol'"}, wantNotify: true},
		{name: "update matching no row", stmts: []string{"UPDATE catalog.parts SET price_minor = 1 WHERE id = -1"}, wantNotify: true},
		{name: "read catalog", stmts: []string{"SELECT count(*) FROM catalog.parts"}},
		{name: "write orders", stmts: []string{validOrder}},
		{name: "rolled back update", stmts: []string{"UPDATE catalog.parts SET price_minor = 1 WHERE id = 8"}, rollback: true},
		{name: "update in a rolled back savepoint, then another", stmts: []string{
			"SAVEPOINT a",
			"UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 8",
			"ROLLBACK TO SAVEPOINT a",
			"UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 9",
		}, wantNotify: true},
		{name: "update in a kept savepoint, then another", stmts: []string{
			"SAVEPOINT a",
			"UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 8",
			"RELEASE SAVEPOINT a",
			"UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 9",
		}, wantNotify: true},
		{name: "truncate orders then parts", stmts: []string{"TRUNCATE orders.order_receipts, orders.order_lines, orders.orders", "TRUNCATE catalog.parts"}, wantNotify: true},
	}
	want := revision()
	for _, tt := range tests {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range tt.stmts {
			if _, err := tx.Exec(ctx, s); err != nil {
				t.Fatalf("%s: %q: %v", tt.name, s, err)
			}
		}
		if tt.rollback {
			err = tx.Rollback(ctx)
		} else {
			err = tx.Commit(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		wait := 5 * time.Second
		if !tt.wantNotify {
			wait = 300 * time.Millisecond
		}
		if tt.wantNotify {
			want++
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		n, err := listener.WaitForNotification(wctx)
		cancel()
		switch {
		case tt.wantNotify && err != nil:
			t.Errorf("%s: got no notification (%v), want one on catalog_changed", tt.name, err)
		case tt.wantNotify && n.Channel != "catalog_changed":
			t.Errorf("%s: got notification on %q, want catalog_changed", tt.name, n.Channel)
		case tt.wantNotify && n.Payload != strconv.FormatInt(want, 10):
			t.Errorf("%s: got payload %q, want the new revision %d", tt.name, n.Payload, want)
		case !tt.wantNotify && err == nil:
			t.Errorf("%s: got notification on %q, want none", tt.name, n.Channel)
		case !tt.wantNotify && !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("%s: wait: %v", tt.name, err)
		}
		if got := revision(); got != want {
			t.Errorf("%s: got revision %d, want %d", tt.name, got, want)
		}
		if tt.wantNotify {
			// One bump, so one notification, per transaction.
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			n, err := listener.WaitForNotification(wctx)
			cancel()
			if err == nil {
				t.Errorf("%s: got a second notification on %q (%q), want exactly one", tt.name, n.Channel, n.Payload)
			}
		}
		if tt.name == "update part price" {
			var after time.Time
			if err := pool.QueryRow(ctx, "SELECT updated_at FROM catalog.parts WHERE id = 8").Scan(&after); err != nil {
				t.Fatal(err)
			}
			if !after.After(before) {
				t.Errorf("updated_at after an update: got %v, want later than %v", after, before)
			}
		}
	}
}

// TestCatalogRevisionConcurrentWriters checks that concurrent transactions
// writing the catalog each get their own revision and that the
// notifications arrive in revision order.
func TestCatalogRevisionConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	dsn := dbtest.New(t)
	listener, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { listener.Close(context.Background()) })
	if _, err := listener.Exec(ctx, "LISTEN catalog_changed"); err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	const writers, each = 4, 10
	errc := make(chan error, writers)
	for w := range writers {
		go func() {
			for range each {
				if _, err := pool.Exec(ctx, "UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = $1", w+1); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range writers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for want := int64(2); want <= 1+writers*each; want++ {
		n, err := listener.WaitForNotification(ctx)
		if err != nil {
			t.Fatalf("waiting for revision %d: %v", want, err)
		}
		if n.Payload != strconv.FormatInt(want, 10) {
			t.Fatalf("got payload %q, want %d (one per transaction, in order)", n.Payload, want)
		}
	}
}

// TestCatalogRevisionPrivileges checks the grants around catalog.revision:
// the catalog's reader role reads it and cannot write it; a role allowed to
// write parts (and nothing else) bumps it through the trigger, which runs
// with its owner's rights, yet cannot write it directly.
func TestCatalogRevisionPrivileges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	// A role of this test only (roles are cluster-wide): it may update parts.
	editor := "carbuild_test_editor_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, s := range []string{
		"CREATE ROLE " + editor + " NOLOGIN",
		"GRANT USAGE ON SCHEMA catalog TO " + editor,
		"GRANT SELECT, UPDATE ON catalog.parts TO " + editor,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, s := range []string{"DROP OWNED BY " + editor, "DROP ROLE " + editor} {
			if _, err := pool.Exec(ctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})

	tests := []struct {
		role    string
		stmt    string
		allowed bool
		wantRev int64 // revision after the statement
	}{
		{"carbuild_catalog_reader", "SELECT n FROM catalog.revision", true, 1},
		{"carbuild_catalog_reader", "UPDATE catalog.revision SET n = n + 1", false, 1},
		// The catalog service changes prices (00008), bumping the revision.
		{"carbuild_catalog_reader", "UPDATE catalog.parts SET price_minor = 1 WHERE id = 1", true, 2},
		{"carbuild_orders_writer", "SELECT n FROM catalog.revision", false, 2},
		{editor, "UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 1", true, 3},
		{editor, "UPDATE catalog.revision SET n = 1", false, 3},
		{editor, "DELETE FROM catalog.revision", false, 3},
		{editor, "SELECT n FROM catalog.revision", false, 3},
	}
	for _, tt := range tests {
		checkPrivilege(ctx, t, conn, tt.role, tt.stmt, tt.allowed)
		var rev int64
		if err := conn.QueryRow(ctx, "SELECT n FROM catalog.revision").Scan(&rev); err != nil {
			t.Fatal(err)
		}
		if rev != tt.wantRev {
			t.Errorf("after %s as %s: got revision %d, want %d", tt.stmt, tt.role, rev, tt.wantRev)
		}
	}
}

// TestNotifyFunctionNotPublic: the SECURITY DEFINER trigger function is not
// executable by PUBLIC (migration 00006), so a role that may create its own
// tables cannot attach it as a trigger and bump the catalog revision; the
// catalog's own triggers still fire for a role allowed to write parts.
func TestNotifyFunctionNotPublic(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()

	// A role of this test only (roles are cluster-wide): it owns a schema of
	// its own and may update parts.
	role := "carbuild_test_intruder_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, s := range []string{
		"CREATE ROLE " + role + " NOLOGIN",
		"CREATE SCHEMA " + role + " AUTHORIZATION " + role,
		"GRANT USAGE ON SCHEMA catalog TO " + role,
		"GRANT SELECT, UPDATE ON catalog.parts TO " + role,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, s := range []string{"DROP SCHEMA " + role + " CASCADE", "DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := pool.Exec(ctx, s); err != nil {
				t.Errorf("%s: %v", s, err)
			}
		}
	})

	for _, r := range []string{"public", "carbuild_catalog_reader", "carbuild_orders_writer", role} {
		var can bool
		if err := conn.QueryRow(ctx, "SELECT has_function_privilege($1, 'catalog.notify_catalog_changed()', 'EXECUTE')", r).Scan(&can); err != nil {
			t.Fatal(err)
		}
		if can {
			t.Errorf("%s may execute catalog.notify_catalog_changed", r)
		}
	}
	revision := func() int64 {
		t.Helper()
		var n int64
		if err := conn.QueryRow(ctx, "SELECT n FROM catalog.revision").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := revision()
	_, err = conn.Exec(ctx, "SET ROLE "+role+"; CREATE TABLE "+role+".t (x int); "+
		"CREATE TRIGGER bump AFTER INSERT ON "+role+".t FOR EACH STATEMENT EXECUTE FUNCTION catalog.notify_catalog_changed(); RESET ROLE")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("attaching the trigger function to a table of its own: got %v, want permission denied (42501)", err)
	}
	if _, err := conn.Exec(ctx, "RESET ROLE"); err != nil {
		t.Fatal(err)
	}
	if got := revision(); got != before {
		t.Errorf("revision %d after the refused trigger, want %d", got, before)
	}
	if _, err := conn.Exec(ctx, "SET ROLE "+role+"; UPDATE catalog.parts SET price_minor = price_minor + 1 WHERE id = 1; RESET ROLE"); err != nil {
		t.Fatalf("update parts as %s: %v", role, err)
	}
	if got := revision(); got != before+1 {
		t.Errorf("revision %d after an update of parts, want %d: the catalog's trigger must still fire", got, before+1)
	}
}

// TestCatalogRevisionDown checks that rolling back 00005 gives the trigger
// function back exactly as 00001 defined it (definition, rights, settings).
func TestCatalogRevisionDown(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := openDB(t, dbtest.New(t))
	function := func() string {
		t.Helper()
		var def string
		if err := db.QueryRowContext(ctx, `SELECT pg_get_functiondef(p.oid) || ' acl=' || COALESCE(p.proacl::text, 'default')
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname = 'catalog' AND p.proname = 'notify_catalog_changed'`).Scan(&def); err != nil {
			t.Fatal(err)
		}
		return def
	}
	latest := function()
	for _, want := range []string{"SECURITY DEFINER", "search_path", "catalog.revision"} {
		if !strings.Contains(latest, want) {
			t.Errorf("trigger function at the latest version lacks %q:\n%s", want, latest)
		}
	}
	if err := migrations.DownTo(ctx, db, 3); err != nil {
		t.Fatal(err)
	}
	v3 := function()
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := migrations.DownTo(ctx, db, 1); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(function(), v3); diff != "" {
		t.Errorf("trigger function after rolling back to 3 differs from 00001's (-00001 +after down):\n%s", diff)
	}
	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(latest, function()); diff != "" {
		t.Errorf("trigger function after down and up (-before +after):\n%s", diff)
	}
}

var fileName = regexp.MustCompile(`^(\d{5})_[a-z0-9_]+\.sql$`)

// TestFiles checks what the plain goose CLI reads: the directory holds only
// goose-annotated, sequentially numbered .sql files (besides Go code), and
// the embedded FS has exactly the same files.
func TestFiles(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".go") && name[0] >= '0' && name[0] <= '9':
			t.Errorf("%s: goose would take a numbered Go file for a Go migration; keep migrations in SQL", name)
			continue
		case e.IsDir(), strings.HasSuffix(name, ".go"), name == "go.mod", name == "go.sum":
			continue
		case !fileName.MatchString(name):
			t.Errorf("%s: want only NNNNN_name.sql migrations (and Go code) in this directory", name)
			continue
		}
		onDisk = append(onDisk, name)
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		for _, ann := range []string{"-- +goose Up", "-- +goose Down"} {
			if strings.Count(s, ann+"\n") != 1 {
				t.Errorf("%s: want exactly one %q line", name, ann)
			}
		}
		if strings.Index(s, "-- +goose Down") < strings.Index(s, "-- +goose Up") {
			t.Errorf("%s: Down section before Up", name)
		}
		if b, e := strings.Count(s, "-- +goose StatementBegin"), strings.Count(s, "-- +goose StatementEnd"); b != e {
			t.Errorf("%s: %d StatementBegin, %d StatementEnd", name, b, e)
		}
		embedded, err := fs.ReadFile(migrations.FS, name)
		if err != nil {
			t.Errorf("%s is not embedded: %v", name, err)
		} else if string(embedded) != s {
			t.Errorf("%s: embedded copy differs from the file", name)
		}
	}
	for i, name := range onDisk {
		v, _ := strconv.Atoi(fileName.FindStringSubmatch(name)[1])
		if v != i+1 {
			t.Errorf("%s: got version %d, want %d (no gaps)", name, v, i+1)
		}
	}
	embedded, err := fs.Glob(migrations.FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(onDisk, embedded); diff != "" {
		t.Errorf("embedded files (-disk +embedded):\n%s", diff)
	}
}

// TestGooseCLIPath runs the migrations from the directory through goose's
// legacy Run API, the code path of `goose -dir migrations postgres "$DATABASE_URL" up`.
func TestGooseCLIPath(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := openDB(t, dbtest.NewEmpty(t))
	// The goose globals are set only here; every other test uses a Provider.
	goose.SetLogger(goose.NopLogger())
	if err := goose.SetDialect("postgres"); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		cmd  string
		want dbState
	}{
		{"up", stateLatest},
		{"reset", stateEmpty},
		{"up", stateLatest},
	} {
		if err := goose.RunContext(ctx, step.cmd, db, "."); err != nil {
			t.Fatalf("goose %s: %v", step.cmd, err)
		}
		if diff := cmp.Diff(step.want, readState(t, ctx, db)); diff != "" {
			t.Fatalf("after goose %s (-want +got):\n%s", step.cmd, diff)
		}
	}
}
