package dbtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestSweepLeaked checks that a database left by a dead test process is
// dropped, and one of a live process is kept.
func TestSweepLeaked(t *testing.T) {
	t.Parallel()
	e, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	if !isLocal(e.server.URL) {
		t.Fatalf("server %s is not local; the sweep only runs for local servers", e.server.Source)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	leaked := fmt.Sprintf("%s%d_sweeptest", testPrefix, cmd.Process.Pid)
	live := fmt.Sprintf("%s%d_sweeptest", testPrefix, os.Getpid())
	for _, name := range []string{leaked, live} {
		if _, err := e.admin.Exec(ctx, "CREATE DATABASE "+ident(name)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.drop(name) })
	}
	sweepLeaked(e.admin)
	for name, want := range map[string]bool{leaked: false, live: true} {
		var exists bool
		if err := e.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != want {
			t.Errorf("%s exists after sweep: got %v, want %v", name, exists, want)
		}
	}
}

func TestIsLocal(t *testing.T) {
	tests := map[string]bool{
		"postgres://postgres@127.0.0.1:5432/postgres": true,
		"postgres://postgres@localhost/postgres":      true,
		"postgres://postgres@[::1]:5432/postgres":     true,
		"host=/var/run/postgresql user=postgres":      true,
		"postgres://u@db.example.com:5432/x":          false,
		"postgres://u@10.0.0.5:5432/x":                false,
	}
	for dsn, want := range tests {
		if got := isLocal(dsn); got != want {
			t.Errorf("isLocal(%q): got %v, want %v", dsn, got, want)
		}
	}
}

// TestPruneTemplates checks that old templates of other migration versions
// are dropped and recent ones kept.
func TestPruneTemplates(t *testing.T) {
	t.Parallel()
	e, err := setup()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	old, recent := templatePrefix+"prunetest_old", templatePrefix+"prunetest_recent"
	for name, created := range map[string]time.Time{old: time.Now().Add(-2 * templateMaxAge), recent: time.Now()} {
		for _, stmt := range []string{
			"CREATE DATABASE " + ident(name) + " IS_TEMPLATE true",
			"COMMENT ON DATABASE " + ident(name) + " IS " + quote(templateComment+created.UTC().Format(time.RFC3339)),
		} {
			if _, err := e.admin.Exec(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() {
			_, _ = e.admin.Exec(context.Background(), "ALTER DATABASE "+ident(name)+" IS_TEMPLATE false")
			e.drop(name)
		})
	}
	conn, err := e.admin.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockTemplates(ctx, conn.Conn())
	if err != nil {
		t.Fatal(err)
	}
	pruneTemplates(ctx, conn.Conn(), e.template)
	unlock()
	conn.Release()
	for name, want := range map[string]bool{old: false, recent: true, e.template: true} {
		var exists bool
		if err := e.admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists != want {
			t.Errorf("%s exists after prune: got %v, want %v", name, exists, want)
		}
	}
}
