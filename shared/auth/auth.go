// Package auth is Car Build's identity: it verifies OAuth2/OIDC bearer tokens
// (JWTs signed by the configured issuer, checked against the issuer's JWKS,
// with iss, aud and exp checked by github.com/coreos/go-oidc) and carries the
// verified subject and roles in a context. The gateway verifies a token at the
// edge; catalog and pricing verify the same token again in a gRPC interceptor,
// so a caller that skips the gateway gains nothing by it: identity comes only
// from a signature the issuer made, never from a header anyone can set.
package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// Roles the services know. Any verified subject is a customer (it owns the
// orders it places); RoleOperator may change the catalog.
const (
	RoleShopper  = "shopper"
	RoleOperator = "operator"
)

// Identity is a verified caller.
type Identity struct {
	// Subject is the token's sub claim: the customer id of the caller's orders.
	Subject string
	Roles   []string
}

// HasRole reports whether the identity holds role.
func (id Identity) HasRole(role string) bool { return slices.Contains(id.Roles, role) }

type ctxKey struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// FromContext returns the verified identity of the call; ok is false for an
// anonymous caller.
func FromContext(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

// Config says which tokens are accepted. An empty Issuer turns
// authentication off: every caller is anonymous and any token is refused.
type Config struct {
	// Issuer is the exact iss of accepted tokens, e.g. https://login.example.com/realms/carbuild.
	Issuer string
	// Audience must be one of the token's aud values.
	Audience string
	// JWKSURL is where the issuer's signing keys are; empty means the
	// jwks_uri of Issuer's /.well-known/openid-configuration.
	JWKSURL string
	// RolesClaim is the claim holding the roles: a dotted path to a list of
	// strings or a space-separated string ("roles", "realm_access.roles").
	RolesClaim string
	// Algorithms are the accepted signing algorithms (default RS256, ES256).
	Algorithms []string
	// RefreshMin is the shortest time between two JWKS fetches caused by a
	// token whose key id is unknown (default 10 s); it bounds what forged
	// tokens can make us fetch. RefreshMax re-reads the JWKS this often
	// even when every key id is known (default 10 min), so a revoked key
	// stops being accepted.
	RefreshMin, RefreshMax time.Duration
	// HTTPClient fetches discovery and keys (default: 10 s timeout).
	HTTPClient *http.Client
}

// Errors of Verify.
var (
	// ErrDisabled: a token was presented but no issuer is configured.
	ErrDisabled = errors.New("authentication is not configured on this server")
	// ErrInvalid wraps every reason a token is refused.
	ErrInvalid = errors.New("invalid token")
)

// Verifier checks bearer tokens. The zero of *Verifier (nil) refuses every
// token with ErrDisabled.
type Verifier struct {
	cfg    Config
	oidc   *oidc.IDTokenVerifier
	claims []string
}

// NewVerifier returns a verifier for cfg, or nil when cfg.Issuer is empty
// (authentication off). It does not contact the issuer: keys are fetched on
// the first token, so a service starts while its issuer is still down.
func NewVerifier(cfg Config) (*Verifier, error) {
	if cfg.Issuer == "" {
		return nil, nil
	}
	if cfg.Audience == "" {
		return nil, errors.New("auth: an audience is required with an issuer")
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []string{oidc.RS256, oidc.ES256}
	}
	if cfg.RefreshMin <= 0 {
		cfg.RefreshMin = 10 * time.Second
	}
	if cfg.RefreshMax <= 0 {
		cfg.RefreshMax = 10 * time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	ks := newKeySet(cfg)
	return &Verifier{
		cfg: cfg,
		oidc: oidc.NewVerifier(cfg.Issuer, ks, &oidc.Config{
			ClientID:             cfg.Audience,
			SupportedSigningAlgs: cfg.Algorithms,
		}),
		claims: strings.Split(cfg.RolesClaim, "."),
	}, nil
}

// Enabled reports whether tokens can be accepted at all.
func (v *Verifier) Enabled() bool { return v != nil }

// Verify checks a raw JWT (without "Bearer ") and returns its identity.
// Errors wrap ErrInvalid or ErrDisabled and say why in words a client can
// act on (expired, wrong audience, bad signature…).
func (v *Verifier) Verify(ctx context.Context, raw string) (Identity, error) {
	if v == nil {
		return Identity{}, ErrDisabled
	}
	tok, err := v.oidc.Verify(ctx, raw)
	if err != nil {
		var exp *oidc.TokenExpiredError
		if errors.As(err, &exp) {
			return Identity{}, fmt.Errorf("%w: token expired at %s", ErrInvalid, exp.Expiry.UTC().Format(time.RFC3339))
		}
		return Identity{}, fmt.Errorf("%w: %s", ErrInvalid, strings.TrimPrefix(err.Error(), "oidc: "))
	}
	if tok.Subject == "" {
		return Identity{}, fmt.Errorf("%w: token has no subject", ErrInvalid)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return Identity{}, fmt.Errorf("%w: claims: %v", ErrInvalid, err)
	}
	return Identity{Subject: tok.Subject, Roles: rolesAt(claims, v.claims)}, nil
}

// rolesAt reads the roles at a dotted claim path: a JSON list of strings or
// one space-separated string; anything else is no roles.
func rolesAt(claims map[string]any, path []string) []string {
	var v any = claims
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	switch t := v.(type) {
	case string:
		return strings.Fields(t)
	case []any:
		var out []string
		for _, e := range t {
			if s, ok := e.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// BearerToken returns the token of an "Authorization: Bearer <token>" value;
// ok is false when the header is empty. A header that is present but not a
// bearer token is an error.
func BearerToken(header string) (token string, ok bool, err error) {
	if header == "" {
		return "", false, nil
	}
	scheme, tok, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", true, fmt.Errorf("%w: the Authorization header must be \"Bearer <token>\"", ErrInvalid)
	}
	return strings.TrimSpace(tok), true, nil
}
