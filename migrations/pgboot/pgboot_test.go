package pgboot

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestPrivateServer forces the private-server path: boot, use, Close, gone.
func TestPrivateServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Default directory (/dev/shm when writable): the path the tests and the
	// run command really take.
	srv, err := FindWith(ctx, nil, FindOptions{SkipEnv: true, SkipLocal: true})
	if err != nil {
		t.Fatalf("boot private server: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			srv.Close()
		}
	})
	if !srv.Private() {
		t.Error("Private(): got false, want true")
	}
	dir := srv.private.dir
	if want := "private server in " + dir; srv.Source != want {
		t.Errorf("Source: got %q, want %q", srv.Source, want)
	}
	if !strings.HasPrefix(srv.URL, "postgres://postgres@127.0.0.1:") {
		t.Errorf("URL: got %q, want postgres://postgres@127.0.0.1:<port>/...", srv.URL)
	}

	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	var fsync string
	if err := conn.QueryRow(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatal(err)
	}
	if fsync != "off" {
		t.Errorf("fsync: got %s, want off", fsync)
	}
	conn.Close(ctx)

	// CreateDatabase/DropDatabase against it.
	dsn, err := CreateDatabase(ctx, srv.URL, "pgboot_test")
	if err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to created database: %v", err)
	}
	var db string
	if err := conn.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	if db != "pgboot_test" {
		t.Errorf("current_database(): got %q, want pgboot_test", db)
	}
	// EnsureDatabase: an existing database is reused, a missing one created.
	for _, name := range []string{"pgboot_test", "pgboot_ensured"} {
		got, err := EnsureDatabase(ctx, srv.URL, name)
		if err != nil {
			t.Fatalf("EnsureDatabase(%s): %v", name, err)
		}
		if want, _ := DatabaseURL(srv.URL, name); got != want {
			t.Errorf("EnsureDatabase(%s): got %q, want %q", name, got, want)
		}
		if err := ping(ctx, got, 5*time.Second); err != nil {
			t.Errorf("EnsureDatabase(%s): database does not answer: %v", name, err)
		}
	}
	// Drop must succeed although conn is still connected.
	if err := DropDatabase(ctx, srv.URL, "pgboot_test"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := DropDatabase(ctx, srv.URL, "pgboot_test"); err != nil {
		t.Errorf("dropping a missing database: got %v, want nil", err)
	}

	srv.Close()
	closed = true
	srv.Close() // idempotent
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("server directory after Close: got %v, want it removed", err)
	}
	host := strings.TrimPrefix(srv.URL, "postgres://postgres@")
	host = host[:strings.Index(host, "/")]
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("server still listens on %s after Close", host)
	}
}

func TestFindEnv(t *testing.T) {
	ctx := t.Context()
	t.Run("set but not answering fails, naming the variable", func(t *testing.T) {
		t.Setenv(EnvURL, "postgres://nobody:secret@127.0.0.1:1/x?sslmode=disable&connect_timeout=2")
		_, err := Find(ctx, nil)
		if err == nil {
			t.Fatal("got nil error, want one")
		}
		for _, want := range []string{"DATABASE_URL is set", "does not answer", "xxxxx"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q: want it to contain %q", err, want)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error %q leaks the password", err)
		}
	})
	t.Run("nothing available explains how to provide a server", func(t *testing.T) {
		t.Setenv(EnvURL, "")
		_, err := FindWith(ctx, nil, FindOptions{SkipLocal: true, SkipPrivate: true})
		if err == nil {
			t.Fatal("got nil error, want one")
		}
		for _, want := range []string{"DATABASE_URL is not set", "set DATABASE_URL", "127.0.0.1:5432", "apt-get install postgresql"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q: want it to contain %q", err, want)
			}
		}
	})
}

func TestDatabaseURL(t *testing.T) {
	tests := []struct {
		admin, want string
	}{
		{"postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "postgres://postgres@127.0.0.1:5432/t1?sslmode=disable"},
		{"postgresql://u:p%40ss@db:5433?sslmode=require", "postgresql://u:p%40ss@db:5433/t1?sslmode=require"},
		{"postgres://u@h/other?dbname=x&sslmode=disable", "postgres://u@h/t1?sslmode=disable"},
		{"host=/tmp port=5432 user=postgres dbname=postgres", "host=/tmp port=5432 user=postgres dbname=postgres dbname='t1'"},
	}
	for _, tt := range tests {
		got, err := DatabaseURL(tt.admin, "t1")
		if err != nil {
			t.Errorf("DatabaseURL(%q): %v", tt.admin, err)
			continue
		}
		if got != tt.want {
			t.Errorf("DatabaseURL(%q): got %q, want %q", tt.admin, got, tt.want)
		}
		cfg, err := pgx.ParseConfig(got)
		if err != nil {
			t.Errorf("parse %q: %v", got, err)
		} else if cfg.Database != "t1" {
			t.Errorf("parse %q: got database %q, want t1", got, cfg.Database)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgres://u@h/db?password=secret", "postgres://u@h/db?password=xxxxx"},
		{"postgres://u@h/db", "postgres://u@h/db"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestSweepStale checks that a private server directory left by a process
// that died is removed on the next boot, and a live owner's is kept.
func TestSweepStale(t *testing.T) {
	base := t.TempDir()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid // reaped: no such process any more
	for name, pid := range map[string]int{"stale": dead, "live": os.Getpid()} {
		dir := filepath.Join(base, dirPrefix+name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sweepStale(base, "/nonexistent", nil, discard())
	if _, err := os.Stat(filepath.Join(base, dirPrefix+"stale")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale dir: got %v, want removed", err)
	}
	if _, err := os.Stat(filepath.Join(base, dirPrefix+"live")); err != nil {
		t.Errorf("live dir: got %v, want kept", err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := findBinDir()
	if err != nil {
		t.Fatalf("findBinDir: %v (install the server: apt-get install postgresql)", err)
	}
	for _, b := range []string{"initdb", "pg_ctl"} {
		if !isExec(filepath.Join(dir, b)) {
			t.Errorf("%s not executable in %s", b, dir)
		}
	}
}

// TestDurablePrivateServer: FindOptions.Durable boots a private server that
// keeps a committed transaction through a crash, as production runs.
func TestDurablePrivateServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	srv, err := FindWith(ctx, nil, FindOptions{SkipEnv: true, SkipLocal: true, Durable: true})
	if err != nil {
		t.Fatalf("boot durable private server: %v", err)
	}
	t.Cleanup(srv.Close)
	conn, err := pgx.Connect(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, name := range []string{"fsync", "synchronous_commit", "full_page_writes"} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != "on" {
			t.Errorf("%s: got %s, want on", name, got)
		}
	}
}
