// Package migrations holds Car Build's database schema and seed data as goose
// SQL migrations, embedded so the migrate binary and tests need no files on disk.
//
// The same .sql files work with the plain goose CLI:
//
//	goose -dir migrations postgres "$DATABASE_URL" up
//
// Migrations are the only way the schema and the seed catalog change. The
// goose version table is public.goose_db_version.
//
// To add one, create the next file by number (NNNNN_what_it_does.sql, no
// gaps; `goose -dir migrations -s create what_it_does sql` does it) with a
// "-- +goose Up" and a "-- +goose Down" section; wrap function bodies in
// StatementBegin/StatementEnd. Down must undo Up exactly: the tests apply
// every migration, roll each back, and apply them again.
//
// Schemas: catalog (cars, parts, revision; owned by the catalog service; each
// transaction writing cars or parts bumps catalog.revision and sends NOTIFY
// catalog_changed with the new revision) and orders (orders, order_lines;
// owned by pricing).
// Money is stored as bigint minor units (centavos) beside a currency code.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	// pgx registers the "pgx" database/sql driver used by Open.
	_ "github.com/jackc/pgx/v5/stdlib"
)

// FS holds the goose SQL migration files, at the root of the file system.
//
//go:embed *.sql
var FS embed.FS

// Open opens a database/sql handle over pgx for dsn (a postgres:// URL or a
// keyword/value DSN). It does not connect; the caller pings and closes it.
func Open(dsn string) (*sql.DB, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	return db, nil
}

// NewProvider returns a goose provider over the embedded migrations for the
// PostgreSQL database db. A PostgreSQL advisory lock serialises concurrent
// runs (several migrate Jobs, parallel test binaries). Extra goose options,
// such as goose.WithVerbose, are applied after the defaults.
func NewProvider(db *sql.DB, opts ...goose.ProviderOption) (*goose.Provider, error) {
	return newProvider(db, FS, opts...)
}

func newProvider(db *sql.DB, fsys fs.FS, extra ...goose.ProviderOption) (*goose.Provider, error) {
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, fmt.Errorf("create migration lock: %w", err)
	}
	opts := []goose.ProviderOption{
		goose.WithSessionLocker(locker),
		// Quiet by default: callers log the returned results their own way.
		goose.WithSlog(slog.New(slog.DiscardHandler)),
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys, append(opts, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("create migration provider: %w", err)
	}
	return p, nil
}

// Up applies every pending migration to db.
func Up(ctx context.Context, db *sql.DB) error {
	p, err := NewProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down rolls back the most recently applied migration of db.
func Down(ctx context.Context, db *sql.DB) error {
	p, err := NewProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.Down(ctx); err != nil {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// DownTo rolls db back until it is at version; 0 rolls back every migration.
func DownTo(ctx context.Context, db *sql.DB, version int64) error {
	p, err := NewProvider(db)
	if err != nil {
		return err
	}
	if _, err := p.DownTo(ctx, version); err != nil {
		return fmt.Errorf("migrate down to %d: %w", version, err)
	}
	return nil
}
