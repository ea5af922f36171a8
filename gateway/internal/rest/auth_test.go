package rest

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

func TestAuthenticate(t *testing.T) {
	is, err := devissuer.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })
	v, err := auth.NewVerifier(auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c devissuer.Claims) string {
		tok, err := is.Token(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := sign(devissuer.Claims{Subject: "alice"})
	tests := []struct {
		name     string
		verifier *auth.Verifier
		headers  []string
		path     string
		want     int
		wantMsg  string
	}{
		{name: "anonymous", verifier: v, want: 200},
		{name: "valid", verifier: v, headers: []string{"Bearer " + good}, want: 200},
		{name: "expired", verifier: v, headers: []string{"Bearer " + sign(devissuer.Claims{Subject: "alice", TTL: -time.Minute})}, want: 401, wantMsg: "expired"},
		{name: "wrong audience", verifier: v, headers: []string{"Bearer " + sign(devissuer.Claims{Subject: "alice", Audience: "x"})}, want: 401, wantMsg: "audience"},
		{name: "bad signature", verifier: v, headers: []string{"Bearer " + sign(devissuer.Claims{Subject: "alice", Forged: true})}, want: 401, wantMsg: "signature"},
		{name: "basic scheme", verifier: v, headers: []string{"Basic YTpi"}, want: 401, wantMsg: "Bearer"},
		{name: "two headers", verifier: v, headers: []string{"Bearer " + good, "Bearer " + good}, want: 401, wantMsg: "more than one"},
		{name: "compat route keeps detail", verifier: v, headers: []string{"Bearer x"}, path: "/pagar", want: 401, wantMsg: `"detail"`},
		{name: "auth off, anonymous", want: 200},
		{name: "auth off, token", headers: []string{"Bearer " + good}, want: 401, wantMsg: "not configured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := authenticate(tt.verifier, nil, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) }))
			path := tt.path
			if path == "" {
				path = "/v1/cars"
			}
			req := httptest.NewRequest("GET", path, nil)
			for _, v := range tt.headers {
				req.Header.Add("Authorization", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("status = %d, want %d: %s", rec.Code, tt.want, rec.Body)
			}
			if tt.want == 401 {
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
					t.Errorf("WWW-Authenticate = %q", rec.Header().Get("WWW-Authenticate"))
				}
				if !strings.Contains(rec.Body.String(), tt.wantMsg) {
					t.Errorf("body %s lacks %q", rec.Body, tt.wantMsg)
				}
			}
		})
	}
}

// TestOperatorsOnly: the management API needs a verified operator; every
// other route passes whoever authenticate let through.
func TestOperatorsOnly(t *testing.T) {
	t.Parallel()
	shopper := &auth.Identity{Subject: "alice", Roles: []string{auth.RoleShopper}}
	op := &auth.Identity{Subject: "olga", Roles: []string{auth.RoleShopper, auth.RoleOperator}}
	tests := []struct {
		name string
		path string
		id   *auth.Identity
		want int
	}{
		{"anonymous", "/v1/admin/parts/6", nil, 401},
		{"shopper", "/v1/admin/parts/6", shopper, 403},
		{"role named like operator", "/v1/admin/cars", &auth.Identity{Subject: "eve", Roles: []string{"Operator", "operators"}}, 403},
		{"operator", "/v1/admin/parts/6", op, 200},
		{"operator, retire", "/v1/admin/cars/gol:retire", op, 200},
		{"anonymous elsewhere", "/v1/cars", nil, 200},
		{"shopper elsewhere", "/v1/orders", shopper, 200},
		{"prefix without slash is another route", "/v1/administration", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("PATCH", tt.path, nil)
			if tt.id != nil {
				r = r.WithContext(auth.NewContext(r.Context(), *tt.id))
			}
			w := httptest.NewRecorder()
			operatorsOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })).ServeHTTP(w, r)
			if w.Code != tt.want {
				t.Errorf("%s as %v = %d %s, want %d", tt.path, tt.id, w.Code, w.Body, tt.want)
			}
			if w.Code == 401 && w.Header().Get("WWW-Authenticate") != "Bearer" {
				t.Errorf("401 without a Bearer challenge")
			}
			if strings.HasPrefix(tt.path, adminPrefix) && w.Header().Get("Cache-Control") != "no-store" {
				t.Errorf("management answer without Cache-Control: no-store")
			}
		})
	}
}
