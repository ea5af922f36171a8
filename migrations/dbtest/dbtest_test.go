package dbtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestNewPoolIsolated checks that each test gets its own migrated, seeded
// database: a write in one is invisible in another.
func TestNewPoolIsolated(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	a, b := dbtest.NewPool(t), dbtest.NewPool(t)
	if _, err := a.Exec(ctx, "DELETE FROM catalog.parts WHERE id = 20"); err != nil {
		t.Fatal(err)
	}
	for name, pool := range map[string]interface {
		QueryRow(context.Context, string, ...any) pgx.Row
	}{"a": a, "b": b} {
		var parts int
		var version int64
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM catalog.parts").Scan(&parts); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(ctx, "SELECT max(version_id) FROM goose_db_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
		want := 20
		if name == "a" {
			want = 19
		}
		if parts != want {
			t.Errorf("database %s: got %d parts, want %d", name, parts, want)
		}
		if version != 3 {
			t.Errorf("database %s: got migration version %d, want 3", name, version)
		}
	}
}

// TestDropped checks that a test's database is gone once the test and
// Main's background drops are done.
func TestDropped(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var name string
	t.Run("uses a database", func(t *testing.T) {
		dsn := dbtest.New(t)
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		name = cfg.Database
		if !strings.HasPrefix(name, "carbuild_test_") {
			t.Errorf("database name: got %q, want carbuild_test_<random>", name)
		}
	})
	admin, err := pgx.Connect(ctx, dbtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The drop runs in the background; poll briefly.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var exists bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database %s still exists after its test ended", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNewEmpty checks that NewEmpty has no migrations applied.
func TestNewEmpty(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbtest.NewEmpty(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('catalog', 'orders')").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("got %d of our schemas in an empty database, want 0", n)
	}
}

// TestParallel exercises concurrent creation from the shared template.
func TestParallel(t *testing.T) {
	for _, name := range []string{"one", "two", "three"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pool := dbtest.NewPool(t)
			var n int
			if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM catalog.cars").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 3 {
				t.Errorf("got %d cars, want 3", n)
			}
		})
	}
}
