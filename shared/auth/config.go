package auth

import (
	"strings"

	"github.com/carbuild/carbuild/shared/config"
)

// Settings registers the authentication settings every service shares
// (AUTH_ISSUER, AUTH_AUDIENCE, AUTH_JWKS_URL, AUTH_ROLES_CLAIM,
// AUTH_ALGORITHMS); call Config after Parse.
type Settings struct {
	c    Config
	algs string
}

// Register adds the settings to set.
func (s *Settings) Register(set *config.Set) {
	set.String(&s.c.Issuer, "auth-issuer", "AUTH_ISSUER", "", "OIDC issuer whose bearer tokens are accepted (exact iss); empty turns authentication off: every caller is anonymous")
	set.String(&s.c.Audience, "auth-audience", "AUTH_AUDIENCE", "carbuild", "audience (aud) accepted tokens must name")
	set.String(&s.c.JWKSURL, "auth-jwks-url", "AUTH_JWKS_URL", "", "issuer's JWKS URL; empty: the jwks_uri of the issuer's /.well-known/openid-configuration")
	set.String(&s.c.RolesClaim, "auth-roles-claim", "AUTH_ROLES_CLAIM", "roles", "claim holding the caller's roles (dotted path, e.g. realm_access.roles)")
	set.String(&s.algs, "auth-algorithms", "AUTH_ALGORITHMS", "RS256,ES256", "accepted JWT signing algorithms")
	set.Duration(&s.c.RefreshMin, "auth-jwks-refresh-min", "AUTH_JWKS_REFRESH_MIN", 0, "shortest time between JWKS fetches for an unknown key id (0: 10s)")
}

// Config returns the parsed configuration.
func (s *Settings) Config() Config {
	c := s.c
	for _, a := range strings.Split(s.algs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			c.Algorithms = append(c.Algorithms, a)
		}
	}
	return c
}
