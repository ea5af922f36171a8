package pgboot

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DatabaseURL returns adminURL pointing at database name instead, keeping
// host, user and options. adminURL may be a URL or a keyword/value DSN.
func DatabaseURL(adminURL, name string) (string, error) {
	if strings.HasPrefix(adminURL, "postgres://") || strings.HasPrefix(adminURL, "postgresql://") {
		u, err := url.Parse(adminURL)
		if err != nil {
			return "", fmt.Errorf("parse database URL: %w", err)
		}
		u.Path = "/" + name
		u.RawPath = ""
		q := u.Query()
		if q.Has("dbname") {
			q.Del("dbname")
			u.RawQuery = q.Encode()
		}
		return u.String(), nil
	}
	if _, err := pgx.ParseConfig(adminURL); err != nil {
		return "", fmt.Errorf("parse database DSN: %w", err)
	}
	// In keyword/value DSNs the last setting of a keyword wins.
	return adminURL + " dbname='" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(name) + "'", nil
}

// CreateDatabase creates database name on the server at adminURL and returns
// a DSN for it.
func CreateDatabase(ctx context.Context, adminURL, name string) (string, error) {
	dsn, err := DatabaseURL(adminURL, name)
	if err != nil {
		return "", err
	}
	if err := adminExec(ctx, adminURL, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return dsn, nil
}

// EnsureDatabase creates database name on the server at adminURL unless it
// exists, and returns a DSN for it. The run command uses it to keep its data
// in its own database rather than in "postgres".
func EnsureDatabase(ctx context.Context, adminURL, name string) (string, error) {
	dsn, err := DatabaseURL(adminURL, name)
	if err != nil {
		return "", err
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return dsn, nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if err != nil && !(errors.As(err, &pgErr) && pgErr.Code == "42P04") { // duplicate_database: lost a race, fine
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return dsn, nil
}

// DropDatabase drops database name on the server at adminURL, if it exists,
// disconnecting any sessions still using it.
func DropDatabase(ctx context.Context, adminURL, name string) error {
	if err := adminExec(ctx, adminURL, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

func adminExec(ctx context.Context, adminURL, sql string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
