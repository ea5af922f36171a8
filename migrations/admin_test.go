package migrations_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

// TestCatalogServicePrivileges checks 00008's grants to the catalog
// service's role: it may add and change cars and parts, column by column
// (never an id, a part's car or a delete), and only append to the audit
// trail, which it can neither read, change nor empty.
func TestCatalogServicePrivileges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	const audit = `INSERT INTO catalog.audit (actor, action, entity, entity_id, before, after) VALUES ('olga', 'update', 'part', '1', '{}', '{}')`
	tests := []struct {
		stmt    string
		allowed bool
	}{
		{`INSERT INTO catalog.cars (id, name, first_year, last_year) VALUES ('gol', 'Gol', 2008, 2023)`, true},
		{`INSERT INTO catalog.parts (car_id, name, category, price_minor, currency) VALUES ('gol', 'Farol', 'headlight', 1, 'BRL')`, true},
		{`UPDATE catalog.parts SET name = 'Farol LED', category = 'headlight', price_minor = 2, currency = 'BRL', version = version + 1 WHERE id = 1`, true},
		{`UPDATE catalog.parts SET retired_at = now() WHERE id = 2`, true},
		{`UPDATE catalog.cars SET name = 'Gol G5', first_year = 2009, last_year = 2023, version = version + 1, retired_at = NULL WHERE id = 'gol'`, true},
		{`SELECT id FROM catalog.parts WHERE id = 1 FOR UPDATE`, true},
		{audit, true},
		// Ids are the catalog's: not chosen for a part, never changed.
		{`INSERT INTO catalog.parts (id, car_id, name, category, price_minor) VALUES (900, 'gol', 'x', 'hood', 1)`, false},
		{`UPDATE catalog.parts SET id = 900 WHERE id = 1`, false},
		{`UPDATE catalog.parts SET car_id = 'civic' WHERE id = 1`, false},
		{`UPDATE catalog.parts SET updated_at = now() - interval '1 year' WHERE id = 1`, false},
		{`UPDATE catalog.cars SET id = 'golf' WHERE id = 'gol'`, false},
		{`DELETE FROM catalog.parts WHERE id = 3`, false},
		{`DELETE FROM catalog.cars WHERE id = 'gol'`, false},
		{`TRUNCATE catalog.parts`, false},
		// The trail is append-only for the service.
		{`SELECT count(*) FROM catalog.audit`, false},
		{`UPDATE catalog.audit SET actor = 'someone else'`, false},
		{`DELETE FROM catalog.audit`, false},
		{`TRUNCATE catalog.audit`, false},
		{`UPDATE catalog.revision SET n = n + 1`, false},
	}
	for _, tt := range tests {
		checkPrivilege(ctx, t, conn, "carbuild_catalog_reader", tt.stmt, tt.allowed)
	}
	// The owner sees what the service appended.
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM catalog.audit WHERE actor = 'olga'").Scan(&n); err != nil || n != 1 {
		t.Errorf("audit rows = %d, %v; want the 1 the service inserted", n, err)
	}
}

// TestAuditConstraints: a create has no before, any other action has one;
// actions and entities are a closed set.
func TestAuditConstraints(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := dbtest.NewPool(t)
	for _, tt := range []struct {
		values string
		ok     bool
	}{
		{`('olga', 'create', 'car', 'gol', NULL, '{}')`, true},
		{`('olga', 'update', 'part', '1', '{}', '{}')`, true},
		{`('olga', 'create', 'car', 'gol', '{}', '{}')`, false},
		{`('olga', 'retire', 'part', '1', NULL, '{}')`, false},
		{`('olga', 'delete', 'part', '1', '{}', '{}')`, false},
		{`('olga', 'update', 'order', '1', '{}', '{}')`, false},
		{`(' ', 'update', 'part', '1', '{}', '{}')`, false},
		{`('olga', 'update', 'part', '1', '{}', NULL)`, false},
	} {
		_, err := pool.Exec(ctx, `INSERT INTO catalog.audit (actor, action, entity, entity_id, before, after) VALUES `+tt.values)
		var pgErr *pgconn.PgError
		switch {
		case tt.ok && err != nil:
			t.Errorf("%s: %v, want accepted", tt.values, err)
		case !tt.ok && (!errors.As(err, &pgErr) || (pgErr.Code != "23514" && pgErr.Code != "23502")):
			t.Errorf("%s: got %v, want a check or not-null violation", tt.values, err)
		}
	}
}

// checkPrivilege runs stmt as role on conn and checks that it is allowed,
// or refused with permission denied (42501).
func checkPrivilege(ctx context.Context, t *testing.T, conn *pgxpool.Conn, role, stmt string, allowed bool) {
	t.Helper()
	_, err := conn.Exec(ctx, "SET ROLE "+role+"; "+stmt+"; RESET ROLE")
	if err != nil {
		if _, rerr := conn.Exec(ctx, "RESET ROLE"); rerr != nil {
			t.Fatal(rerr)
		}
	}
	var pgErr *pgconn.PgError
	switch {
	case allowed && err != nil:
		t.Errorf("as %s: %s: %v, want allowed", role, stmt, err)
	case !allowed && (!errors.As(err, &pgErr) || pgErr.Code != "42501"):
		t.Errorf("as %s: %s: got %v, want permission denied (42501)", role, stmt, err)
	}
}

// TestAdminDownKeepsRetiredHidden: rolling 00008 back would put retired
// parts on sale again, so Down refuses while there are any.
func TestAdminDownKeepsRetiredHidden(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := openDB(t, dbtest.New(t))
	if _, err := db.ExecContext(ctx, `UPDATE catalog.parts SET retired_at = now() WHERE id = 13`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Down(ctx, db); err == nil || !strings.Contains(err.Error(), "catalog has retired cars or parts") {
		t.Fatalf("down with a retired part: %v, want it refused", err)
	}
	var retired bool
	if err := db.QueryRowContext(ctx, `SELECT retired_at IS NOT NULL FROM catalog.parts WHERE id = 13`).Scan(&retired); err != nil || !retired {
		t.Errorf("part 13 after the refused down: retired %v, %v; want still retired", retired, err)
	}
	if _, err := db.ExecContext(ctx, `UPDATE catalog.parts SET retired_at = NULL WHERE id = 13`); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Down(ctx, db); err != nil {
		t.Fatalf("down without retired records: %v", err)
	}
}
