// Package dbtest gives store tests a fresh PostgreSQL database per test,
// migrated with the real embedded migrations and dropped when the test ends.
//
// Use it from any module of the workspace:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
//	func TestStore(t *testing.T) {
//		pool := dbtest.NewPool(t) // or dsn := dbtest.New(t)
//		...
//	}
//
// The server comes from pgboot.Find (DATABASE_URL, then 127.0.0.1:5432, then
// a private server booted for the test binary and stopped by Main). The
// migrations run once per set of migration files into a template database
// (carbuild_tmpl_<hash>); each test database is a cheap copy of it. When no
// PostgreSQL can be found or started the test fails with pgboot's
// explanation; it is never skipped.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/pgboot"
)

// Prefixes of the databases dbtest creates.
const (
	templatePrefix = "carbuild_tmpl_"
	testPrefix     = "carbuild_test_"
)

// setupTimeout bounds finding or booting the server and building the template.
const setupTimeout = 2 * time.Minute

// env is the per-process state: one server, one template, one admin pool.
type env struct {
	server   *pgboot.Server
	admin    *pgxpool.Pool
	template string

	drops      sync.WaitGroup
	dropFailed atomic.Bool
}

// drop drops a test database in the background; Main waits for the drops.
func (e *env) drop(name string) {
	e.drops.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := e.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name)+" WITH (FORCE)"); err != nil {
			e.dropFailed.Store(true)
			fmt.Fprintf(os.Stderr, "dbtest: drop database %s: %v\n", name, err)
		}
	})
}

var (
	mainRunning atomic.Bool
	mu          sync.Mutex
	current     *env
	setupErr    error
)

// Main runs the tests of a package that uses dbtest and then stops the
// private PostgreSQL server, if one was booted. Call it from TestMain:
//
//	func TestMain(m *testing.M) { dbtest.Main(m) }
//
// New and NewPool fail without it, so a booted server never outlives the
// test binary. A test database that could not be dropped makes the run fail.
func Main(m *testing.M) {
	mainRunning.Store(true)
	code := m.Run()
	mainRunning.Store(false)
	if !shutdown() && code == 0 {
		code = 1
	}
	os.Exit(code)
}

// shutdown waits for pending drops, then closes the admin pool and stops a
// private server. It reports whether every test database was dropped.
func shutdown() bool {
	mu.Lock()
	defer mu.Unlock()
	if current == nil {
		return true
	}
	current.drops.Wait()
	ok := !current.dropFailed.Load()
	current.admin.Close()
	current.server.Close()
	current = nil
	return ok
}

// New creates a fresh database migrated with every migration (schemas and
// the seed catalog) and returns its DSN. The database is dropped when the
// test and its subtests finish.
func New(t testing.TB) string {
	t.Helper()
	return create(t, true)
}

// create makes a test database, a copy of the migrated template or empty.
func create(t testing.TB, fromTemplate bool) string {
	t.Helper()
	e, err := setup()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The pid lets a later run drop databases that a killed run left behind.
	name := fmt.Sprintf("%s%d_%s", testPrefix, os.Getpid(), randomHex(6))
	stmt := "CREATE DATABASE " + ident(name)
	if fromTemplate {
		stmt += " TEMPLATE " + ident(e.template)
	}
	if _, err := e.admin.Exec(ctx, stmt); err != nil {
		t.Fatalf("dbtest: %s: %v", stmt, err)
	}
	// Dropping takes about as long as creating on a server that syncs to
	// disk; do it in the background and let Main wait for it.
	t.Cleanup(func() { e.drop(name) })
	dsn, err := pgboot.DatabaseURL(e.server.URL, name)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return dsn
}

// NewEmpty creates a fresh, empty database (no migrations applied) and
// returns its DSN, for tests of the migrations themselves. It is dropped when
// the test finishes.
func NewEmpty(t testing.TB) string {
	t.Helper()
	return create(t, false)
}

// NewPool is New returning a pgx pool on the fresh database, closed before
// the database is dropped.
func NewPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatalf("dbtest: open pool: %v", err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("dbtest: ping: %v", err)
	}
	return pool
}

// AdminURL returns the admin DSN of the server the tests use (for tests that
// need to create databases of their own).
func AdminURL(t testing.TB) string {
	t.Helper()
	e, err := setup()
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	return e.server.URL
}

// setup finds the server and makes sure the template exists, once per
// process; a failure is remembered so every test reports it quickly.
func setup() (*env, error) {
	if !mainRunning.Load() {
		return nil, errors.New("dbtest.Main is not running: add " +
			"`func TestMain(m *testing.M) { dbtest.Main(m) }` to the package's tests " +
			"(it stops a private PostgreSQL server when the tests end)")
	}
	mu.Lock()
	defer mu.Unlock()
	if current != nil || setupErr != nil {
		return current, setupErr
	}
	current, setupErr = newEnv()
	return current, setupErr
}

func newEnv() (*env, error) {
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	logger := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	srv, err := pgboot.Find(ctx, logger)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			srv.Close()
		}
	}()
	cfg, err := pgxpool.ParseConfig(srv.URL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", pgboot.Redact(srv.URL), err)
	}
	cfg.MaxConns = 4
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", srv.Source, err)
	}
	defer func() {
		if !ok {
			admin.Close()
		}
	}()
	tmpl, err := migrationsHash()
	if err != nil {
		return nil, err
	}
	tmpl = templatePrefix + tmpl
	if err := ensureTemplate(ctx, admin, srv.URL, tmpl); err != nil {
		return nil, fmt.Errorf("prepare template database on %s: %w", srv.Source, err)
	}
	ok = true
	e := &env{server: srv, admin: admin, template: tmpl}
	if isLocal(srv.URL) {
		e.drops.Go(func() { sweepLeaked(admin) })
	}
	return e, nil
}

// sweepLeaked drops test databases left by test processes of this machine
// that are gone (killed by a timeout before their cleanup ran). Databases in
// use, or whose creator is alive, are left alone. Best effort: errors are
// ignored, a later run tries again.
func sweepLeaked(admin *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rows, _ := admin.Query(ctx, `SELECT datname FROM pg_database d
		WHERE datname LIKE $1 || '%'
		  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datid = d.oid)`, testPrefix)
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, name := range names {
		pidText, _, ok := strings.Cut(strings.TrimPrefix(name, testPrefix), "_")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		// Without FORCE: a database someone connected to meanwhile stays.
		_, _ = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(name))
	}
}

// isLocal reports whether the server runs on this machine, where the pids
// in test database names mean something.
func isLocal(dsn string) bool {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return false
	}
	h := cfg.Host
	return h == "localhost" || strings.HasPrefix(h, "/") || net.ParseIP(h).IsLoopback()
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// ensureTemplate creates and migrates the template database unless it
// exists. An advisory lock keeps parallel test binaries (go test ./... runs
// one per package) from building it at the same time; the template gets its
// final name only once fully migrated, so a crash never leaves a half-built
// template behind.
func ensureTemplate(ctx context.Context, admin *pgxpool.Pool, adminURL, tmpl string) error {
	conn, err := admin.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	unlock, err := lockTemplates(ctx, conn.Conn())
	if err != nil {
		return err
	}
	defer unlock()

	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", tmpl).Scan(&exists); err != nil {
		return fmt.Errorf("look for template: %w", err)
	}
	if exists {
		return nil
	}
	building := tmpl + "_build"
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(building)+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop leftover %s: %w", building, err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+ident(building)); err != nil {
		return fmt.Errorf("create %s: %w", building, err)
	}
	dsn, err := pgboot.DatabaseURL(adminURL, building)
	if err != nil {
		return err
	}
	if err := migrate(ctx, dsn); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(building)+" RENAME TO "+ident(tmpl)); err != nil {
		return fmt.Errorf("rename %s: %w", building, err)
	}
	// IS_TEMPLATE lets roles with CREATEDB (not only superusers) copy it.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(tmpl)+" IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("mark %s as template: %w", tmpl, err)
	}
	comment := templateComment + time.Now().UTC().Format(time.RFC3339)
	if _, err := conn.Exec(ctx, "COMMENT ON DATABASE "+ident(tmpl)+" IS "+quote(comment)); err != nil {
		return fmt.Errorf("comment on %s: %w", tmpl, err)
	}
	pruneTemplates(ctx, conn.Conn(), tmpl)
	return nil
}

// lockTemplates takes the session advisory lock under which templates are
// built and pruned, waiting for other test processes to release it.
func lockTemplates(ctx context.Context, conn *pgx.Conn) (unlock func(), err error) {
	h := fnv.New64a()
	h.Write([]byte("carbuild dbtest template"))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return nil, fmt.Errorf("take template lock: %w", err)
	}
	return func() {
		// A session lock outlives a failed statement; release it explicitly.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key)
	}, nil
}

// templateComment prefixes the creation time in a template's comment.
const templateComment = "carbuild dbtest template, created "

// templateMaxAge is how old another template must be before it is pruned: a
// test binary of another checkout may still be copying a recent one.
const templateMaxAge = time.Hour

// pruneTemplates drops templates of other migration versions once they are
// old and unused, so editing migrations does not pile up databases. Best
// effort; the caller holds the template lock (a template being built has
// no comment yet and would look old).
func pruneTemplates(ctx context.Context, conn *pgx.Conn, current string) {
	rows, _ := conn.Query(ctx, `SELECT datname, coalesce(shobj_description(oid, 'pg_database'), '')
		FROM pg_database WHERE datname LIKE $1 || '%' AND datname <> $2`, templatePrefix, current)
	type tmpl struct{ Name, Comment string }
	old, err := pgx.CollectRows(rows, pgx.RowToStructByPos[tmpl])
	if err != nil {
		return
	}
	for _, o := range old {
		created, err := time.Parse(time.RFC3339, strings.TrimPrefix(o.Comment, templateComment))
		if err == nil && time.Since(created) < templateMaxAge {
			continue
		}
		// Without FORCE: a template being copied right now stays.
		if _, err := conn.Exec(ctx, "ALTER DATABASE "+ident(o.Name)+" IS_TEMPLATE false"); err == nil {
			_, _ = conn.Exec(ctx, "DROP DATABASE "+ident(o.Name))
		}
	}
}

// quote returns s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func migrate(ctx context.Context, dsn string) error {
	db, err := migrations.Open(dsn)
	if err != nil {
		return err
	}
	// Closing before the copy matters: CREATE DATABASE ... TEMPLATE fails
	// while anyone is connected to the template.
	defer db.Close()
	return migrations.Up(ctx, db)
}

// migrationsHash identifies the migration files' contents, so a changed
// migration gets a new template.
func migrationsHash() (string, error) {
	names, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		b, err := fs.ReadFile(migrations.FS, n)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return hex.EncodeToString(b)
}
