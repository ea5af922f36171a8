package store_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/carbuild/carbuild/migrations/dbtest"
	"github.com/carbuild/carbuild/pricing/internal/pricing"
	"github.com/carbuild/carbuild/pricing/internal/quote"
	"github.com/carbuild/carbuild/pricing/internal/store"
	"github.com/carbuild/carbuild/shared/database"
	"github.com/carbuild/carbuild/shared/errs"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var lastID atomic.Int64

func order(lines ...quote.Line) pricing.Order {
	var sub int64
	for _, l := range lines {
		sub += l.LineTotal
	}
	return pricing.Order{
		ID:        fmt.Sprintf("00000000-0000-4000-8000-%012d", lastID.Add(1)),
		Status:    "CONFIRMED",
		CreatedAt: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
		Quote:     quote.Quote{Lines: lines, Currency: "BRL", Subtotal: sub, Shipping: 1000, Total: sub + 1000},
	}
}

func line(id int64, name, category string, unit int64, qty int) quote.Line {
	return quote.Line{Part: quote.Part{ID: id, Name: name, Category: category, UnitPrice: unit, Currency: "BRL"}, Quantity: qty, LineTotal: unit * int64(qty)}
}

func TestSaveOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := store.New(pool)

	first := order(line(7, "Chassi", "chassis", 800000, 1), line(9, "Roda", "wheels", 50000, 4))
	first.Customer = "alice"
	got, hash, created, err := s.SaveOrder(ctx, first, "key-1", []byte("hash-1"), nil)
	if err != nil || !created {
		t.Fatalf("first SaveOrder: created %v, err %v; want created", created, err)
	}
	if string(hash) != "hash-1" || got.ID != first.ID {
		t.Errorf("first SaveOrder returned id %s hash %q; want %s %q", got.ID, hash, first.ID, "hash-1")
	}

	// The same key again stores nothing and returns what was stored first.
	second := order(line(1, "Motor", "engine", 100, 1))
	second.Customer = "alice"
	got, hash, created, err = s.SaveOrder(ctx, second, "key-1", []byte("hash-2"), nil)
	if err != nil || created {
		t.Fatalf("second SaveOrder: created %v, err %v; want the stored order", created, err)
	}
	if string(hash) != "hash-1" {
		t.Errorf("second SaveOrder hash %q; want the first request's %q", hash, "hash-1")
	}
	if diff := cmp.Diff(first, got); diff != "" {
		t.Errorf("second SaveOrder returned (-first +got):\n%s", diff)
	}
	if _, err := s.OrderFor(ctx, second.ID, "alice", nil); !errors.Is(err, errs.NotFound) {
		t.Errorf("Order(second) err = %v; want ErrNotFound", err)
	}

	loaded, err := s.OrderFor(ctx, first.ID, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, loaded); diff != "" {
		t.Errorf("Order(first) (-saved +loaded):\n%s", diff)
	}
	var lines int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM orders.order_lines").Scan(&lines); err != nil {
		t.Fatal(err)
	}
	if lines != 2 {
		t.Errorf("order_lines has %d rows; want 2 (the second order wrote none)", lines)
	}
}

// An order whose lines break a constraint leaves nothing behind: the order
// and its lines are one statement.
func TestSaveOrderIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	s := store.New(pool)

	bad := order(line(7, "Chassi", "chassis", 800000, 1), line(9, "Roda", "wheels", 50000, 4))
	bad.Quote.Lines[1].LineTotal++ // breaks order_lines_total_is_product
	if _, _, _, err := s.SaveOrder(ctx, bad, "key-bad", []byte("h"), nil); err == nil {
		t.Fatal("SaveOrder with an inconsistent line succeeded; want an error")
	}
	var orders, lines int
	if err := pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM orders.orders), (SELECT count(*) FROM orders.order_lines)").Scan(&orders, &lines); err != nil {
		t.Fatal(err)
	}
	if orders != 0 || lines != 0 {
		t.Errorf("after a failed SaveOrder: %d orders, %d lines; want none", orders, lines)
	}
	if _, _, err := s.OrderByKey(ctx, "", "key-bad"); !errors.Is(err, errs.NotFound) {
		t.Errorf("OrderByKey after failure err = %v; want ErrNotFound", err)
	}
}

// The service pool bounds every statement on the server: by default, and as
// a DATABASE_URL asks.
func TestPoolStatementTimeout(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := dbtest.New(t)
	tests := []struct {
		name, url, want string
	}{
		{"default", dsn, "10s"},
		{"from the URL", dsn + sep(dsn) + "statement_timeout=150", "150ms"},
	}
	for _, tt := range tests {
		pool, err := database.Open(ctx, tt.url, database.Options{MaxConns: 1}, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := pool.QueryRow(ctx, "SHOW statement_timeout").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("%s: statement_timeout = %s; want %s", tt.name, got, tt.want)
		}
		if tt.want == "150ms" {
			_, err := pool.Exec(ctx, "SELECT pg_sleep(1)")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Errorf("a 1 s statement under a 150 ms timeout: err %v; want query_canceled (57014)", err)
			}
		}
		pool.Close()
	}
}

func sep(url string) string {
	if strings.Contains(url, "?") {
		return "&"
	}
	return "?"
}
