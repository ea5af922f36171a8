// Command migrate applies Car Build's embedded goose migrations to the
// database at DATABASE_URL and exits. It is the Kubernetes migrate Job and the
// migration step of the local run.
//
// Usage:
//
//	migrate [flags] [up [roles]|roles|down|down-to VERSION|status|version]
//
// The default command is up. -wait retries the first connection until the
// database answers, so the Job may start before PostgreSQL is ready.
//
// roles (alone, or after up in the same run) ensures the services' login
// roles: for each of CATALOG_DB_PASSWORD and PRICING_DB_PASSWORD that is set,
// the role (CATALOG_DB_ROLE, default catalog_svc; PRICING_DB_ROLE, default
// pricing_svc) is created as LOGIN in its group of migration 00004, or its
// password is changed when it exists. Passwords are never logged.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/pgboot"
	sharedconfig "github.com/carbuild/carbuild/shared/config"
	"github.com/carbuild/carbuild/shared/logging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stderr, os.Args[1:], os.LookupEnv, os.Stdout)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "migrate:", err)
		os.Exit(1)
	}
}

// config is the migrate step's configuration: env gives the default, a flag
// of the same meaning wins.
type config struct {
	DatabaseURL string
	Wait        time.Duration
	Command     string
	Version     int64 // for down-to
	// Roles: ensure the login roles (command roles, or up followed by roles).
	Roles   bool
	Catalog loginRole
	Pricing loginRole
	// LogLevel and LogFormat configure the logger, as in every service.
	LogLevel, LogFormat string
}

// loginRoles returns the roles to ensure: those with a password.
func (c config) loginRoles() []loginRole {
	var rs []loginRole
	for _, r := range []loginRole{c.Catalog, c.Pricing} {
		if r.Password != "" {
			rs = append(rs, r)
		}
	}
	return rs
}

func parseConfig(args []string, lookupEnv func(string) (string, bool), out io.Writer) (config, error) {
	var cfg config
	set := sharedconfig.New("migrate", lookupEnv)
	fs := set.FlagSet()
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: migrate [flags] [up [roles]|roles|down|down-to VERSION|status|version]\n\n"+
			"  up        apply every pending migration (default); 'up roles' then ensures the login roles\n"+
			"  roles     ensure the services' login roles: create each one whose password is set\n"+
			"            (LOGIN, in its group of migration 00004) or set its password if it exists\n"+
			"  down      roll back the latest migration\n"+
			"  down-to   roll back to VERSION (0 = everything)\n"+
			"  status    list migrations and whether they are applied\n"+
			"  version   print the database's current version\n\nFlags:\n")
		fs.PrintDefaults()
	}
	set.Secret(&cfg.DatabaseURL, "database-url", "DATABASE_URL", "", "PostgreSQL URL to migrate")
	set.Duration(&cfg.Wait, "wait", "MIGRATE_WAIT", 60*time.Second, "how long to retry connecting until the database answers")
	cfg.Catalog.Group, cfg.Pricing.Group = catalogGroup, pricingGroup
	set.String(&cfg.Catalog.Name, "catalog-role", "CATALOG_DB_ROLE", "catalog_svc", "catalog's login role, member of "+catalogGroup)
	set.String(&cfg.Pricing.Name, "pricing-role", "PRICING_DB_ROLE", "pricing_svc", "pricing's login role, member of "+pricingGroup)
	// Passwords: prefer the env, since flags show in the process list.
	set.Secret((*string)(&cfg.Catalog.Password), "catalog-password", "CATALOG_DB_PASSWORD", "", "password roles sets for the catalog role; never printed; prefer the env")
	set.Secret((*string)(&cfg.Pricing.Password), "pricing-password", "PRICING_DB_PASSWORD", "", "password roles sets for the pricing role; never printed; prefer the env")
	set.String(&cfg.LogLevel, "log-level", "LOG_LEVEL", "info", "log level: debug, info, warn, error")
	set.String(&cfg.LogFormat, "log-format", "LOG_FORMAT", "json", "log format: json or text")
	if err := set.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.DatabaseURL == "" {
		return cfg, errors.New("no database: set DATABASE_URL or -database-url")
	}
	if cfg.Wait < 0 {
		return cfg, fmt.Errorf("-wait %s: must not be negative", cfg.Wait)
	}
	rest := fs.Args()
	cfg.Command = "up"
	if len(rest) > 0 {
		cfg.Command = rest[0]
		rest = rest[1:]
	}
	if cfg.Command == "up" && len(rest) > 0 && rest[0] == "roles" {
		cfg.Roles = true
		rest = rest[1:]
	}
	switch cfg.Command {
	case "roles":
		cfg.Roles = true
		if len(rest) > 0 {
			return cfg, fmt.Errorf("roles takes no arguments, got %q", rest)
		}
	case "up", "down", "status", "version":
		if len(rest) > 0 {
			return cfg, fmt.Errorf("%s takes no arguments, got %q", cfg.Command, rest)
		}
	case "down-to":
		if len(rest) != 1 {
			return cfg, errors.New("down-to needs one argument: the version to roll back to")
		}
		v, err := strconv.ParseInt(rest[0], 10, 64)
		if err != nil || v < 0 {
			return cfg, fmt.Errorf("down-to %q: want a version number >= 0", rest[0])
		}
		cfg.Version = v
	default:
		return cfg, fmt.Errorf("unknown command %q: want up, roles, down, down-to, status or version", cfg.Command)
	}
	if cfg.Roles {
		if len(cfg.loginRoles()) == 0 {
			return cfg, errors.New("roles: set CATALOG_DB_PASSWORD and/or PRICING_DB_PASSWORD")
		}
		for _, r := range cfg.loginRoles() {
			if err := validRoleName(r.Name); err != nil {
				return cfg, err
			}
		}
		if cfg.Catalog.Name == cfg.Pricing.Name && len(cfg.loginRoles()) == 2 {
			return cfg, fmt.Errorf("catalog and pricing share the role %q; each needs its own", cfg.Catalog.Name)
		}
	}
	return cfg, nil
}

// run migrates as args say, logging to logOut and printing results (status,
// version, -h) to stdout.
func run(ctx context.Context, logOut io.Writer, args []string, lookupEnv func(string) (string, bool), stdout io.Writer) error {
	cfg, err := parseConfig(args, lookupEnv, stdout)
	if err != nil {
		return err
	}
	logger, err := logging.New(logOut, "migrate", cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	attrs := []any{"command", cfg.Command, "database_url", pgboot.Redact(cfg.DatabaseURL), "wait", cfg.Wait.String()}
	if cfg.Roles {
		var names []string // never the passwords
		for _, r := range cfg.loginRoles() {
			names = append(names, r.Name)
		}
		attrs = append(attrs, "roles", names)
	}
	logger.Info("starting", attrs...)

	db, err := migrations.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := waitForDB(ctx, logger, db, cfg.Wait); err != nil {
		return err
	}
	p, err := migrations.NewProvider(db)
	if err != nil {
		return err
	}

	switch cfg.Command {
	case "roles": // the roles alone, below
	case "up":
		res, err := p.Up(ctx)
		logResults(logger, res)
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
	case "down":
		res, err := p.Down(ctx)
		if res != nil {
			logResults(logger, []*goose.MigrationResult{res})
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
	case "down-to":
		res, err := p.DownTo(ctx, cfg.Version)
		logResults(logger, res)
		if err != nil {
			return fmt.Errorf("migrate down to %d: %w", cfg.Version, err)
		}
	case "status":
		st, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migration status: %w", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
		for _, s := range st {
			at := "-"
			if !s.AppliedAt.IsZero() {
				at = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, s.Source.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		return nil
	case "version":
		v, err := p.GetDBVersion(ctx)
		if err != nil {
			return fmt.Errorf("database version: %w", err)
		}
		fmt.Fprintln(stdout, v)
		return nil
	}
	if cfg.Roles {
		if err := ensureRoles(ctx, logger, db, cfg.loginRoles()); err != nil {
			return err
		}
	}
	v, err := p.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("database version: %w", err)
	}
	logger.Info("done", "command", cfg.Command, "version", v)
	return nil
}

// waitForDB pings until the database answers or wait has passed, so a Job
// started alongside PostgreSQL does not fail on its first try.
func waitForDB(ctx context.Context, logger *slog.Logger, db *sql.DB, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("waiting for the database: %w", ctx.Err())
		}
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return fmt.Errorf("database did not answer within %s (%d attempts): %w", wait, attempt, err)
		}
		delay = min(delay, remaining) // one last try at the deadline
		logger.Warn("database not ready, retrying", "attempt", attempt, "retry_in", delay.Round(time.Millisecond).String(), "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the database: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 2*time.Second)
	}
}

func logResults(logger *slog.Logger, res []*goose.MigrationResult) {
	for _, r := range res {
		attrs := []any{"version", r.Source.Version, "file", r.Source.Path,
			"direction", r.Direction, "duration", r.Duration.String(), "empty", r.Empty}
		if r.Error != nil {
			logger.Error("migration failed", append(attrs, "err", r.Error)...)
			continue
		}
		msg := "migration applied"
		if r.Direction == "down" {
			msg = "migration rolled back"
		}
		logger.Info(msg, attrs...)
	}
}
