package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Group roles of migration 00004_least_privilege_roles.sql.
const (
	catalogGroup = "carbuild_catalog_reader"
	pricingGroup = "carbuild_orders_writer"
)

// loginRole is one service's login role: a member of exactly the group that
// grants what the service needs. Password is a secret: never log or print it.
type loginRole struct {
	Name     string
	Group    string
	Password secret
}

// secret is a password. Its String is empty whatever it holds, so %v of a
// config never shows it (-h masks it as every secret setting: config.Secret).
type secret string

func (s secret) String() string { return "" }

// GoString keeps %#v from showing the password.
func (s secret) GoString() string {
	if s == "" {
		return `""`
	}
	return `"<redacted>"`
}

// roleName is what ensureRole accepts as a login role's name: a lower-case
// unquoted SQL identifier, so the name in a DATABASE_URL and the role match
// without quoting rules.
var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// validRoleName refuses names that are not plain identifiers, reserved pg_
// names, and the group roles themselves (which must stay NOLOGIN).
func validRoleName(name string) error {
	switch {
	case !roleName.MatchString(name):
		return fmt.Errorf("role name %q: want a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)", name)
	case strings.HasPrefix(name, "pg_"):
		return fmt.Errorf("role name %q: the pg_ prefix is reserved", name)
	case name == catalogGroup || name == pricingGroup || name == "public":
		return fmt.Errorf("role name %q: a group role (or PUBLIC) cannot be a service's login role", name)
	}
	return nil
}

// ensureRoles makes each login role exist, able to log in with its password
// and a member of its group. It is idempotent: a second run changes only the
// password. The groups must exist (run up first).
func ensureRoles(ctx context.Context, logger *slog.Logger, db *sql.DB, roles []loginRole) error {
	for _, r := range roles {
		// Two runs creating the same role at once: the loser sees
		// duplicate_object and its second attempt takes the ALTER path.
		var err error
		for range 2 {
			var created bool
			created, err = ensureRole(ctx, db, r)
			if err == nil {
				msg := "login role password set"
				if created {
					msg = "login role created"
				}
				logger.Info(msg, "role", r.Name, "group", r.Group)
				break
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || (pgErr.Code != "42710" && pgErr.Code != "23505") {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("login role %s: %w", r.Name, err)
		}
	}
	return nil
}

// ensureRole creates r (LOGIN PASSWORD ... IN ROLE group) or, when it
// exists, sets its password and makes sure it is in the group. CREATE and
// ALTER ROLE take no bind parameters, so the statement is built by the
// server's format(): %L quotes the password as a literal; the names are
// validated and quoted with pgx.Identifier. It reports whether it created r.
func ensureRole(ctx context.Context, db *sql.DB, r loginRole) (created bool, err error) {
	if err := validRoleName(r.Name); err != nil {
		return false, err
	}
	if r.Password == "" {
		return false, errors.New("empty password")
	}
	role := pgx.Identifier{r.Name}.Sanitize()
	group := pgx.Identifier{r.Group}.Sanitize()

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it is a no-op

	var groupLogin bool
	err = tx.QueryRowContext(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, r.Group).Scan(&groupLogin)
	if errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("group role %s does not exist: run migrate up first", r.Group)
	}
	if err != nil {
		return false, fmt.Errorf("look up group %s: %w", r.Group, err)
	}
	if groupLogin {
		return false, fmt.Errorf("group role %s can log in; it must be NOLOGIN", r.Group)
	}

	var super, self bool
	err = tx.QueryRowContext(ctx,
		`SELECT rolsuper OR rolcreaterole OR rolbypassrls, rolname = current_user FROM pg_roles WHERE rolname = $1`,
		r.Name).Scan(&super, &self)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, fmt.Errorf("look up role: %w", err)
	}
	switch {
	case exists && self:
		return false, errors.New("is the role migrate connects as; a service must not log in as the owner")
	case exists && super:
		return false, errors.New("exists with SUPERUSER, CREATEROLE or BYPASSRLS; refusing to hand it to a service")
	}

	const (
		create = "SELECT format('CREATE ROLE %s WITH LOGIN PASSWORD %L IN ROLE %s', $1::text, $2::text, $3::text)"
		alter  = "SELECT format('ALTER ROLE %s WITH LOGIN PASSWORD %L', $1::text, $2::text)"
		grant  = "SELECT format('GRANT %s TO %s', $1::text, $2::text)"
	)
	type build struct {
		sql  string
		args []any
	}
	stmts := []build{{create, []any{role, string(r.Password), group}}}
	if exists {
		stmts = []build{{alter, []any{role, string(r.Password)}}, {grant, []any{group, role}}}
	}
	for _, b := range stmts {
		var stmt string
		if err := tx.QueryRowContext(ctx, b.sql, b.args...).Scan(&stmt); err != nil {
			return false, fmt.Errorf("build statement: %w", err)
		}
		// The error of a failed statement never quotes the statement, so
		// the password stays out of the logs.
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			verb := "alter"
			if !exists {
				verb = "create"
			}
			return false, fmt.Errorf("%s role: %w", verb, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("commit: %w", err)
	}
	return !exists, nil
}
