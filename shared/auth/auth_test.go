package auth_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

func startIssuer(t *testing.T) *devissuer.Issuer {
	t.Helper()
	is, err := devissuer.Start("127.0.0.1:0", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = is.Close() })
	return is
}

func newVerifier(t *testing.T, c auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(c)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	is := startIssuer(t)
	v := newVerifier(t, auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience})
	tests := []struct {
		name    string
		claims  devissuer.Claims
		want    auth.Identity
		wantErr string
	}{
		{name: "shopper", claims: devissuer.Claims{Subject: "alice", Roles: []string{"shopper"}},
			want: auth.Identity{Subject: "alice", Roles: []string{"shopper"}}},
		{name: "operator", claims: devissuer.Claims{Subject: "olga", Roles: []string{"shopper", "operator"}},
			want: auth.Identity{Subject: "olga", Roles: []string{"shopper", "operator"}}},
		{name: "no roles", claims: devissuer.Claims{Subject: "bob"}, want: auth.Identity{Subject: "bob"}},
		{name: "expired", claims: devissuer.Claims{Subject: "alice", TTL: -time.Minute}, wantErr: "token expired"},
		{name: "wrong audience", claims: devissuer.Claims{Subject: "alice", Audience: "someone-else"}, wantErr: "audience"},
		{name: "wrong issuer", claims: devissuer.Claims{Subject: "alice", Issuer: "https://evil.example"}, wantErr: "issued by a different provider"},
		{name: "bad signature", claims: devissuer.Claims{Subject: "alice", Forged: true}, wantErr: "signature"},
		{name: "no subject", claims: devissuer.Claims{}, wantErr: "no subject"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := is.Token(tt.claims)
			if err != nil {
				t.Fatal(err)
			}
			got, err := v.Verify(context.Background(), tok)
			if tt.wantErr != "" {
				if !errors.Is(err, auth.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Verify = %v, want ErrInvalid mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
	for _, raw := range []string{"", "not-a-jwt", "a.b.c"} {
		if _, err := v.Verify(context.Background(), raw); !errors.Is(err, auth.ErrInvalid) {
			t.Errorf("Verify(%q) = %v, want ErrInvalid", raw, err)
		}
	}
}

// A token signed with a key rotated in after the verifier cached the key
// set is accepted: the unknown key id makes it fetch the set again.
func TestVerifyAfterRotation(t *testing.T) {
	is := startIssuer(t)
	v := newVerifier(t, auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience, RefreshMin: time.Nanosecond})
	old, _ := is.Token(devissuer.Claims{Subject: "alice"})
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if err := is.Rotate(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := is.Token(devissuer.Claims{Subject: "alice"})
	for name, tok := range map[string]string{"new key": fresh, "old key": old} {
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Errorf("%s after rotation: %v", name, err)
		}
	}
}

func TestRolesClaimPath(t *testing.T) {
	is := startIssuer(t)
	// The dev issuer puts roles at "roles"; a path that is not there gives
	// none, never an error.
	v := newVerifier(t, auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience, RolesClaim: "realm_access.roles"})
	tok, _ := is.Token(devissuer.Claims{Subject: "alice", Roles: []string{"operator"}})
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.HasRole(auth.RoleOperator) {
		t.Errorf("roles read from the wrong claim: %v", id.Roles)
	}
}

func TestDisabled(t *testing.T) {
	v := newVerifier(t, auth.Config{})
	if v.Enabled() {
		t.Fatal("a verifier without issuer is enabled")
	}
	if _, err := v.Verify(context.Background(), "x"); !errors.Is(err, auth.ErrDisabled) {
		t.Errorf("Verify = %v, want ErrDisabled", err)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		present, err bool
	}{
		{header: ""},
		{header: "Bearer abc", want: "abc", present: true},
		{header: "bearer  abc ", want: "abc", present: true},
		{header: "Basic dXNlcg==", present: true, err: true},
		{header: "Bearer", present: true, err: true},
		{header: "Bearer ", present: true, err: true},
	}
	for _, tt := range tests {
		got, present, err := auth.BearerToken(tt.header)
		if got != tt.want || present != tt.present || (err != nil) != tt.err {
			t.Errorf("BearerToken(%q) = %q, %v, %v; want %q, %v, err %v", tt.header, got, present, err, tt.want, tt.present, tt.err)
		}
	}
}

func TestUnaryServerInterceptor(t *testing.T) {
	is := startIssuer(t)
	v := newVerifier(t, auth.Config{Issuer: is.URL(), Audience: devissuer.DefaultAudience})
	good, _ := is.Token(devissuer.Claims{Subject: "alice", Roles: []string{"shopper"}})
	expired, _ := is.Token(devissuer.Claims{Subject: "alice", TTL: -time.Minute})
	tests := []struct {
		name     string
		verifier *auth.Verifier
		md       []string
		wantCode codes.Code
		wantSub  string
	}{
		{name: "anonymous", verifier: v, wantCode: codes.OK},
		{name: "valid", verifier: v, md: []string{"authorization", "Bearer " + good}, wantCode: codes.OK, wantSub: "alice"},
		{name: "expired", verifier: v, md: []string{"authorization", "Bearer " + expired}, wantCode: codes.Unauthenticated},
		{name: "not bearer", verifier: v, md: []string{"authorization", "Basic x"}, wantCode: codes.Unauthenticated},
		{name: "two values", verifier: v, md: []string{"authorization", "Bearer " + good, "authorization", "Bearer " + good}, wantCode: codes.Unauthenticated},
		// Identity comes only from a verified token: a subject header is ignored.
		{name: "forged subject header", verifier: v, md: []string{"x-subject", "alice"}, wantCode: codes.OK},
		{name: "auth off, anonymous", verifier: nil, wantCode: codes.OK},
		{name: "auth off, token", verifier: nil, md: []string{"authorization", "Bearer " + good}, wantCode: codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(tt.md...))
			var gotSub string
			_, err := auth.UnaryServerInterceptor(tt.verifier)(ctx, nil, nil, func(ctx context.Context, _ any) (any, error) {
				if id, ok := auth.FromContext(ctx); ok {
					gotSub = id.Subject
				}
				return nil, nil
			})
			if got := status.Code(err); got != tt.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tt.wantCode)
			}
			if gotSub != tt.wantSub {
				t.Errorf("subject = %q, want %q", gotSub, tt.wantSub)
			}
		})
	}
}
