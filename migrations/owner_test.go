package migrations_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

// TestOrderOwnerDownUp checks that rolling 00007 back and forth keeps every
// customer's orders and keys (Down folds the customer into the key so the
// global unique key can come back; Up unfolds it), even when two customers
// and a guest used the same key.
func TestOrderOwnerDownUp(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	db := openDB(t, dbtest.New(t))
	for i, customer := range []any{"alice", "bob", nil} {
		if _, err := db.ExecContext(ctx, `INSERT INTO orders.orders (id, customer_id, idempotency_key, request_hash, status, currency,
			subtotal_minor, shipping_minor, total_minor) VALUES ($1, $2, 'same-key', '\x01', 'CONFIRMED', 'BRL', 0, 0, 0)`,
			[]string{"6c1f3a2e-0000-4000-8000-00000000000a", "6c1f3a2e-0000-4000-8000-00000000000b", "6c1f3a2e-0000-4000-8000-00000000000c"}[i], customer); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO orders.order_receipts (order_id, token_hash)
		VALUES ('6c1f3a2e-0000-4000-8000-00000000000c', sha256('r'))`); err != nil {
		t.Fatal(err)
	}
	type row struct{ ID, Customer, Key string }
	rows := func(sql string) []row {
		t.Helper()
		r, err := db.QueryContext(ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []row
		for r.Next() {
			var x row
			if err := r.Scan(&x.ID, &x.Customer, &x.Key); err != nil {
				t.Fatal(err)
			}
			out = append(out, x)
		}
		if err := r.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	const withOwner = `SELECT id::text, coalesce(customer_id, ''), idempotency_key FROM orders.orders ORDER BY id`
	before := rows(withOwner)

	if err := migrations.DownTo(ctx, db, 6); err != nil {
		t.Fatal(err)
	}
	folded := rows(`SELECT id::text, '', idempotency_key FROM orders.orders ORDER BY id`)
	want := []row{
		{"6c1f3a2e-0000-4000-8000-00000000000a", "", "same-key\x1falice"},
		{"6c1f3a2e-0000-4000-8000-00000000000b", "", "same-key\x1fbob"},
		{"6c1f3a2e-0000-4000-8000-00000000000c", "", "same-key"},
	}
	if diff := cmp.Diff(want, folded); diff != "" {
		t.Errorf("after down (-want +got):\n%s", diff)
	}

	if err := migrations.Up(ctx, db); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, rows(withOwner)); diff != "" {
		t.Errorf("after down and up (-before +after):\n%s", diff)
	}
	var receipts int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM orders.order_receipts`).Scan(&receipts); err != nil {
		t.Fatal(err)
	}
	if receipts != 0 {
		t.Errorf("%d receipts after down and up; want 0 (dropped with the table)", receipts)
	}
}
