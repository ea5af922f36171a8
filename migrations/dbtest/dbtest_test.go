package dbtest_test

import (
	"context"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestNewPoolIsolated checks that parallel tests each get their own migrated,
// seeded database: a write in one is invisible in the other.
func TestNewPoolIsolated(t *testing.T) {
	deleted := make(chan struct{})
	count := func(t *testing.T, q string) int {
		t.Helper()
		pool := dbtest.NewPool(t)
		if q != "" {
			if _, err := pool.Exec(t.Context(), q); err != nil {
				t.Fatal(err)
			}
			close(deleted)
		} else {
			<-deleted
		}
		var parts, version int
		if err := pool.QueryRow(t.Context(), "SELECT count(*) FROM catalog.parts").Scan(&parts); err != nil {
			t.Fatal(err)
		}
		if err := pool.QueryRow(t.Context(), "SELECT max(version_id) FROM goose_db_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
		if want := latestVersion(t); version != want {
			t.Errorf("got migration version %d, want %d (every migration)", version, want)
		}
		return parts
	}
	t.Run("writer", func(t *testing.T) {
		t.Parallel()
		if got := count(t, "DELETE FROM catalog.parts WHERE id = 20"); got != 19 {
			t.Errorf("got %d parts after deleting one, want 19", got)
		}
	})
	t.Run("reader", func(t *testing.T) {
		t.Parallel()
		if got := count(t, ""); got != 20 {
			t.Errorf("got %d parts while another test deleted one of its own, want 20", got)
		}
	})
}

// TestNewEmptyDropped checks that NewEmpty has no migrations applied and
// that a test's database is gone once the test is done.
func TestNewEmptyDropped(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var name string
	t.Run("uses a database", func(t *testing.T) {
		dsn := dbtest.NewEmpty(t)
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(name, "carbuild_test_") {
			t.Errorf("database name: got %q, want carbuild_test_<pid>_<random>", name)
		}
		var n int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_namespace WHERE nspname IN ('catalog', 'orders')").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("got %d of our schemas in an empty database, want 0", n)
		}
	})
	admin, err := pgx.Connect(ctx, dbtest.AdminURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// The drop runs in the background; poll.
	for {
		var exists bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatalf("database %s still exists after its test ended (%v)", name, err)
		}
		if !exists {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// latestVersion is the number of the last embedded migration (no gaps:
// migrations.TestFiles checks that).
func latestVersion(t *testing.T) int {
	t.Helper()
	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("embedded migrations: %v, %d files", err, len(files))
	}
	return len(files)
}
