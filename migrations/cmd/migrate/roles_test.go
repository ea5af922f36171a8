package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/dbtest"
)

func TestUsageHidesPasswords(t *testing.T) {
	var out bytes.Buffer
	_, _ = parseConfig([]string{"-h"}, env(map[string]string{"CATALOG_DB_PASSWORD": "cat-secret-1", "PRICING_DB_PASSWORD": "pri-secret-2"}), &out)
	for _, pw := range []string{"cat-secret-1", "pri-secret-2"} {
		if strings.Contains(out.String(), pw) {
			t.Errorf("-h prints the password %q from the env:\n%s", pw, out.String())
		}
	}
	cfg := config{Catalog: loginRole{Name: "x", Password: "cat-secret-1"}}
	for _, s := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(s, "cat-secret-1") {
			t.Errorf("formatted config shows the password: %s", s)
		}
	}
}

// TestEnsureRoles runs ensureRole step by step on a real migrated database:
// each step ensures one role and then checks what that role may do. Roles
// are cluster-wide, so every name carries a random suffix and is dropped at
// the end.
func TestEnsureRoles(t *testing.T) {
	t.Parallel()
	dsn := dbtest.New(t)
	db := openDB(t, dsn)
	admin := connectAs(t, dsn)
	suffix := "_" + randomSuffix(t)
	catalogRole, pricingRole := "catalog_svc"+suffix, "pricing_svc"+suffix
	t.Cleanup(func() {
		for _, r := range []string{catalogRole, pricingRole} {
			if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	var adminName string
	if err := admin.QueryRow(t.Context(), "SELECT current_user").Scan(&adminName); err != nil {
		t.Fatal(err)
	}

	type access struct {
		sql     string
		allowed bool
	}
	readCatalog := access{"SELECT count(*) FROM catalog.parts", true}
	// The catalog may change parts (the management API, 00008) but never
	// delete them or change their ids.
	noCatalogDelete := access{"DELETE FROM catalog.parts WHERE id = 1", false}
	noIDChange := access{"UPDATE catalog.parts SET id = id WHERE id = 1", false}
	noOrders := access{"SELECT count(*) FROM orders.orders", false}
	readOrders := access{"SELECT count(*) FROM orders.orders", true}
	noCatalog := access{"SELECT count(*) FROM catalog.parts", false}
	noOrderDelete := access{"DELETE FROM orders.orders", false}

	steps := []struct {
		name        string
		role        loginRole
		wantCreated bool
		wantErr     string
		oldPassword secret // must no longer be the role's password
		access      []access
	}{
		{
			name:        "creates the catalog role",
			role:        loginRole{Name: catalogRole, Group: catalogGroup, Password: "first-pw"},
			wantCreated: true,
			access:      []access{readCatalog, noCatalogDelete, noIDChange, noOrders},
		},
		{
			name:        "re-run changes only the password",
			role:        loginRole{Name: catalogRole, Group: catalogGroup, Password: "second-pw"},
			oldPassword: "first-pw",
			access:      []access{readCatalog, noCatalogDelete, noOrders},
		},
		{
			name:        "a password with quotes and backslashes is a literal",
			role:        loginRole{Name: catalogRole, Group: catalogGroup, Password: `it's a \' "pw"; DROP ROLE x; --`},
			oldPassword: "second-pw",
			access:      []access{readCatalog, noCatalogDelete},
		},
		{
			name:        "creates the pricing role",
			role:        loginRole{Name: pricingRole, Group: pricingGroup, Password: "pricing-pw"},
			wantCreated: true,
			access:      []access{readOrders, noOrderDelete, noCatalog},
		},
		{
			name:   "same again is idempotent",
			role:   loginRole{Name: pricingRole, Group: pricingGroup, Password: "pricing-pw"},
			access: []access{readOrders, noCatalog},
		},
		{name: "quote in the name refused", role: loginRole{Name: `x"; DROP ROLE postgres; --`, Group: catalogGroup, Password: "pw"}, wantErr: "want a lower-case identifier"},
		{name: "upper case refused", role: loginRole{Name: "Catalog", Group: catalogGroup, Password: "pw"}, wantErr: "want a lower-case identifier"},
		{name: "empty name refused", role: loginRole{Group: catalogGroup, Password: "pw"}, wantErr: "want a lower-case identifier"},
		{name: "too long refused", role: loginRole{Name: strings.Repeat("a", 64), Group: catalogGroup, Password: "pw"}, wantErr: "at most 63 bytes"},
		{name: "reserved prefix refused", role: loginRole{Name: "pg_monitor", Group: catalogGroup, Password: "pw"}, wantErr: "reserved"},
		{name: "group as login refused", role: loginRole{Name: pricingGroup, Group: catalogGroup, Password: "pw"}, wantErr: "group role"},
		{name: "empty password refused", role: loginRole{Name: catalogRole, Group: catalogGroup}, wantErr: "empty password"},
		{name: "the owner is not handed out", role: loginRole{Name: adminName, Group: catalogGroup, Password: "pw"}, wantErr: "role migrate connects as"},
		{name: "missing group", role: loginRole{Name: catalogRole, Group: "carbuild_no_such_group" + suffix, Password: "pw"}, wantErr: "run migrate up first"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			created, err := ensureRole(ctx, db, s.role)
			if s.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), s.wantErr) {
					t.Fatalf("got error %v, want one containing %q", err, s.wantErr)
				}
				if s.role.Password != "" && strings.Contains(err.Error(), string(s.role.Password)) {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if created != s.wantCreated {
				t.Errorf("created = %v, want %v", created, s.wantCreated)
			}
			var login, inGroup bool
			var groups int
			err = admin.QueryRow(ctx, `SELECT r.rolcanlogin, pg_has_role(r.oid, $2, 'MEMBER'),
				(SELECT count(*) FROM pg_auth_members m WHERE m.member = r.oid)
				FROM pg_roles r WHERE r.rolname = $1`, s.role.Name, s.role.Group).Scan(&login, &inGroup, &groups)
			if err != nil {
				t.Fatal(err)
			}
			if !login || !inGroup || groups != 1 {
				t.Errorf("role %s: login %v, member of %s %v, in %d groups; want login, member, 1 group", s.role.Name, login, s.role.Group, inGroup, groups)
			}
			if !passwordMatches(t, admin, s.role.Name, s.role.Password) {
				t.Errorf("role %s: stored password does not match the new one", s.role.Name)
			}
			if s.oldPassword != "" && passwordMatches(t, admin, s.role.Name, s.oldPassword) {
				t.Errorf("role %s: stored password still matches the old one", s.role.Name)
			}
			conn := connectAs(t, withUser(t, dsn, s.role.Name, string(s.role.Password)))
			for _, a := range s.access {
				_, err := conn.Exec(ctx, a.sql)
				if got := err == nil; got != a.allowed {
					t.Errorf("as %s: %s: allowed = %v (err %v), want %v", s.role.Name, a.sql, got, err, a.allowed)
				}
			}
		})
	}
}

// TestRunUpRoles runs "up roles" the way the Kubernetes Job does, on an
// empty database: migrations, then both roles, twice; no password in any log
// line.
func TestRunUpRoles(t *testing.T) {
	t.Parallel()
	dsn := dbtest.NewEmpty(t)
	admin := connectAs(t, dsn)
	suffix := "_" + randomSuffix(t)
	e := map[string]string{
		"DATABASE_URL":        dsn,
		"CATALOG_DB_ROLE":     "catalog_svc" + suffix,
		"PRICING_DB_ROLE":     "pricing_svc" + suffix,
		"CATALOG_DB_PASSWORD": "catalog-pw-" + suffix,
		"PRICING_DB_PASSWORD": "pricing-pw-" + suffix,
	}
	t.Cleanup(func() {
		for _, r := range []string{e["CATALOG_DB_ROLE"], e["PRICING_DB_ROLE"]} {
			if _, err := admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize()); err != nil {
				t.Errorf("drop role %s: %v", r, err)
			}
		}
	})
	for i, wantMsg := range []string{`"msg":"login role created"`, `"msg":"login role password set"`} {
		var logs bytes.Buffer
		ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
		err := run(ctx, &logs, []string{"-wait", "0s", "up", "roles"}, env(e), &bytes.Buffer{})
		cancel()
		if err != nil {
			t.Fatalf("run %d: %v\nlogs:\n%s", i+1, err, logs.String())
		}
		if got := strings.Count(logs.String(), wantMsg); got != 2 {
			t.Errorf("run %d: %d lines %s, want 2:\n%s", i+1, got, wantMsg, logs.String())
		}
		for _, pw := range []string{e["CATALOG_DB_PASSWORD"], e["PRICING_DB_PASSWORD"]} {
			if strings.Contains(logs.String(), pw) {
				t.Errorf("run %d: the logs show a password:\n%s", i+1, logs.String())
			}
		}
	}
	conn := connectAs(t, withUser(t, dsn, e["CATALOG_DB_ROLE"], e["CATALOG_DB_PASSWORD"]))
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM catalog.parts").Scan(&n); err != nil || n == 0 {
		t.Errorf("catalog role reads %d parts (err %v), want the seed", n, err)
	}
}

// passwordMatches checks the role's stored verifier (SCRAM-SHA-256 or md5)
// against password, so the test holds even on a trust-auth server where any
// password logs in.
func passwordMatches(t *testing.T, admin *pgx.Conn, role string, password secret) bool {
	t.Helper()
	var stored *string
	if err := admin.QueryRow(t.Context(), "SELECT rolpassword FROM pg_authid WHERE rolname = $1", role).Scan(&stored); err != nil {
		t.Fatalf("read the verifier of %s (the test needs a superuser): %v", role, err)
	}
	if stored == nil {
		return false
	}
	if h, ok := strings.CutPrefix(*stored, "md5"); ok {
		sum := md5.Sum([]byte(string(password) + role))
		return hex.EncodeToString(sum[:]) == h
	}
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
	rest, ok := strings.CutPrefix(*stored, "SCRAM-SHA-256$")
	if !ok {
		t.Fatalf("role %s: unknown verifier format", role)
	}
	params, keys, _ := strings.Cut(rest, "$")
	iterStr, saltB64, _ := strings.Cut(params, ":")
	storedB64, _, _ := strings.Cut(keys, ":")
	iter, err := strconv.Atoi(iterStr)
	if err != nil {
		t.Fatal(err)
	}
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		t.Fatal(err)
	}
	want, err := base64.StdEncoding.DecodeString(storedB64)
	if err != nil {
		t.Fatal(err)
	}
	salted, err := pbkdf2.Key(sha256.New, string(password), salt, iter, sha256.Size)
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, salted)
	mac.Write([]byte("Client Key"))
	got := sha256.Sum256(mac.Sum(nil))
	return hmac.Equal(got[:], want)
}

func openDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := migrations.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func connectAs(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect as %s: %v", redactedUser(dsn), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func withUser(t *testing.T, dsn, user, password string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}

func redactedUser(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return "?"
	}
	return u.User.Username()
}

func randomSuffix(t *testing.T) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
