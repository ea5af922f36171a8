package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    config
		wantErr string
	}{
		{
			name: "defaults from env",
			env:  map[string]string{"DATABASE_URL": "postgres://env/db"},
			want: config{DatabaseURL: "postgres://env/db", Wait: 60 * time.Second, Command: "up"},
		},
		{
			name: "flags win over env",
			args: []string{"-database-url", "postgres://flag/db", "-wait", "5s", "status"},
			env:  map[string]string{"DATABASE_URL": "postgres://env/db", "MIGRATE_WAIT": "1m"},
			want: config{DatabaseURL: "postgres://flag/db", Wait: 5 * time.Second, Command: "status"},
		},
		{
			name: "wait from env",
			env:  map[string]string{"DATABASE_URL": "postgres://env/db", "MIGRATE_WAIT": "0s"},
			args: []string{"version"},
			want: config{DatabaseURL: "postgres://env/db", Command: "version"},
		},
		{
			name: "down-to",
			args: []string{"-database-url", "x", "down-to", "2"},
			want: config{DatabaseURL: "x", Wait: time.Minute, Command: "down-to", Version: 2},
		},
		{
			name: "up roles with passwords from env",
			args: []string{"-database-url", "x", "up", "roles"},
			env:  map[string]string{"CATALOG_DB_PASSWORD": "c-pw", "PRICING_DB_PASSWORD": "p-pw"},
			want: config{DatabaseURL: "x", Wait: time.Minute, Command: "up", Roles: true,
				Catalog: loginRole{Name: "catalog_svc", Group: catalogGroup, Password: "c-pw"},
				Pricing: loginRole{Name: "pricing_svc", Group: pricingGroup, Password: "p-pw"}},
		},
		{
			name: "roles alone, names from env and flag",
			args: []string{"-database-url", "x", "-pricing-role", "flag_pricing", "roles"},
			env:  map[string]string{"CATALOG_DB_ROLE": "env_catalog", "PRICING_DB_ROLE": "env_pricing", "PRICING_DB_PASSWORD": "p-pw"},
			want: config{DatabaseURL: "x", Wait: time.Minute, Command: "roles", Roles: true,
				Catalog: loginRole{Name: "env_catalog", Group: catalogGroup},
				Pricing: loginRole{Name: "flag_pricing", Group: pricingGroup, Password: "p-pw"}},
		},
		{name: "roles without passwords", args: []string{"-database-url", "x", "up", "roles"}, wantErr: "set CATALOG_DB_PASSWORD and/or PRICING_DB_PASSWORD"},
		{name: "roles extra argument", args: []string{"-database-url", "x", "roles", "up"}, env: map[string]string{"CATALOG_DB_PASSWORD": "pw"}, wantErr: "roles takes no arguments"},
		{name: "roles after down", args: []string{"-database-url", "x", "down", "roles"}, env: map[string]string{"CATALOG_DB_PASSWORD": "pw"}, wantErr: "down takes no arguments"},
		{
			name:    "role name not an identifier",
			args:    []string{"-database-url", "x", "-catalog-role", `x"; DROP ROLE postgres; --`, "roles"},
			env:     map[string]string{"CATALOG_DB_PASSWORD": "pw"},
			wantErr: "want a lower-case identifier",
		},
		{name: "role name is a group", args: []string{"-database-url", "x", "-catalog-role", catalogGroup, "roles"}, env: map[string]string{"CATALOG_DB_PASSWORD": "pw"}, wantErr: "cannot be a service's login role"},
		{name: "role name reserved", args: []string{"-database-url", "x", "roles"}, env: map[string]string{"PRICING_DB_ROLE": "pg_signal_backend", "PRICING_DB_PASSWORD": "pw"}, wantErr: "reserved"},
		{
			name:    "one role for both services",
			args:    []string{"-database-url", "x", "-catalog-role", "svc", "-pricing-role", "svc", "roles"},
			env:     map[string]string{"CATALOG_DB_PASSWORD": "a", "PRICING_DB_PASSWORD": "b"},
			wantErr: "each needs its own",
		},
		{name: "no database", args: []string{"up"}, wantErr: "set DATABASE_URL or -database-url"},
		{name: "unknown command", args: []string{"-database-url", "x", "sideways"}, wantErr: `unknown command "sideways"`},
		{name: "extra argument", args: []string{"-database-url", "x", "up", "3"}, wantErr: "up takes no arguments"},
		{name: "down-to without version", args: []string{"-database-url", "x", "down-to"}, wantErr: "down-to needs one argument"},
		{name: "down-to negative", args: []string{"-database-url", "x", "down-to", "-1"}, wantErr: "want a version number"},
		{name: "bad env wait", env: map[string]string{"MIGRATE_WAIT": "soon"}, wantErr: `MIGRATE_WAIT="soon"`},
		{name: "negative wait", args: []string{"-database-url", "x", "-wait", "-1s"}, wantErr: "must not be negative"},
		{name: "bad flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfig(tt.args, env(tt.env), io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.want.Catalog.Name == "" {
				tt.want.Catalog = loginRole{Name: "catalog_svc", Group: catalogGroup, Password: tt.want.Catalog.Password}
			}
			if tt.want.LogLevel == "" {
				tt.want.LogLevel, tt.want.LogFormat = "info", "json"
			}
			if tt.want.Pricing.Name == "" {
				tt.want.Pricing = loginRole{Name: "pricing_svc", Group: pricingGroup, Password: tt.want.Pricing.Password}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

func TestUsageNamesEnv(t *testing.T) {
	var out bytes.Buffer
	_, err := parseConfig([]string{"-h"}, env(nil), &out)
	if err == nil {
		t.Fatal("-h: got nil error, want flag.ErrHelp")
	}
	for _, want := range []string{"-database-url", "env DATABASE_URL", "-wait", "env MIGRATE_WAIT", "status",
		"roles", "env CATALOG_DB_PASSWORD", "env PRICING_DB_PASSWORD", "env CATALOG_DB_ROLE", "env PRICING_DB_ROLE"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage: want %q in:\n%s", want, out.String())
		}
	}
}

// TestRun drives the binary's run against a real empty database through
// every command.
func TestRun(t *testing.T) {
	t.Parallel()
	dsn := dbtest.NewEmpty(t)
	var logs bytes.Buffer
	steps := []struct {
		args       []string
		wantOut    string
		wantLogs   []string
		wantTables int
	}{
		{args: []string{"version"}, wantOut: "0\n"},
		{args: nil, wantLogs: []string{`"msg":"migration applied"`, `"file":"00008_catalog_admin.sql"`}, wantTables: 7},
		{args: []string{"up"}, wantTables: 7}, // nothing pending is fine
		{args: []string{"version"}, wantOut: "8\n", wantTables: 7},
		{args: []string{"status"}, wantOut: "00008_catalog_admin.sql", wantTables: 7},
		{args: []string{"down"}, wantLogs: []string{`"msg":"migration rolled back"`}, wantTables: 6},
		{args: []string{"version"}, wantOut: "7\n", wantTables: 6},
		{args: []string{"down"}, wantLogs: []string{`"msg":"migration rolled back"`}, wantTables: 5},
		{args: []string{"version"}, wantOut: "6\n", wantTables: 5},
		{args: []string{"down"}, wantLogs: []string{`"msg":"migration rolled back"`}, wantTables: 5},
		{args: []string{"version"}, wantOut: "5\n", wantTables: 5},
		{args: []string{"down"}, wantLogs: []string{`"msg":"migration rolled back"`}, wantTables: 4},
		{args: []string{"version"}, wantOut: "4\n", wantTables: 4},
		{args: []string{"down-to", "0"}},
		{args: []string{"version"}, wantOut: "0\n"},
	}
	for _, s := range steps {
		logs.Reset()
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err := run(ctx, &logs, append([]string{"-wait", "0s"}, s.args...), env(map[string]string{"DATABASE_URL": dsn}), &out)
		cancel()
		if err != nil {
			t.Fatalf("migrate %v: %v\nlogs:\n%s", s.args, err, logs.String())
		}
		if !strings.Contains(out.String(), s.wantOut) {
			t.Errorf("migrate %v: stdout %q, want it to contain %q", s.args, out.String(), s.wantOut)
		}
		for _, w := range s.wantLogs {
			if !strings.Contains(logs.String(), w) {
				t.Errorf("migrate %v: logs do not contain %s:\n%s", s.args, w, logs.String())
			}
		}
		if got := countTables(t, dsn); got != s.wantTables {
			t.Errorf("migrate %v: got %d tables in catalog/orders, want %d", s.args, got, s.wantTables)
		}
	}
}

func countTables(t *testing.T, dsn string) int {
	t.Helper()
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	err = db.QueryRowContext(t.Context(),
		"SELECT count(*) FROM pg_tables WHERE schemaname IN ('catalog', 'orders')").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWaitGivesUp checks that -wait bounds the retries against a database
// that never answers, and that the error says so.
func TestWaitGivesUp(t *testing.T) {
	t.Parallel()
	db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:1/x?sslmode=disable&connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	err = waitForDB(t.Context(), slog.New(slog.DiscardHandler), db, 1500*time.Millisecond)
	took := time.Since(start)
	if err == nil || !strings.Contains(err.Error(), "did not answer within 1.5s") {
		t.Fatalf("got %v, want a 'did not answer within 1.5s' error", err)
	}
	// Never before the wait; the upper bound only detects a hang: the last
	// try starts at the deadline and a ping is bounded at 5 s.
	t.Logf("gave up after %s (wait 1.5s)", took)
	if took < 1500*time.Millisecond || took > 15*time.Second {
		t.Errorf("took %s, want the wait (1.5s) plus at most one bounded ping", took)
	}
}
