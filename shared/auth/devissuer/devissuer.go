// Package devissuer is a local OpenID Connect issuer for development and
// tests: it generates its RSA signing keys in memory at start, serves the
// discovery document and the JWKS, and signs tokens for any subject and roles
// on request. `make run` starts one and prints a shopper's and an operator's
// token; the end-to-end tests mint valid, expired, wrong-audience and
// forged tokens with it. It has no login: anyone who can reach it can get any
// token, so it listens on loopback only and never runs in production, where
// AUTH_ISSUER names a real issuer.
package devissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultAudience is the audience the services accept by default.
const DefaultAudience = "carbuild"

// Issuer signs tokens and serves its keys over HTTP.
type Issuer struct {
	url      string
	audience string
	srv      *http.Server
	lis      net.Listener

	mu     sync.Mutex
	keys   []*rsa.PrivateKey // every published key; the last one signs
	kids   []string
	forger *rsa.PrivateKey // never published: signs "bad signature" tokens
}

// Start listens on addr (e.g. "127.0.0.1:0") and serves the issuer. Its
// issuer URL is http://<addr>.
func Start(addr, audience string) (*Issuer, error) {
	if audience == "" {
		audience = DefaultAudience
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dev issuer: listen %s: %w", addr, err)
	}
	is := &Issuer{url: "http://" + lis.Addr().String(), audience: audience, lis: lis}
	if err := is.Rotate(); err != nil {
		lis.Close()
		return nil, err
	}
	if is.forger, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		lis.Close()
		return nil, fmt.Errorf("dev issuer: key: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", is.discovery)
	mux.HandleFunc("GET /jwks.json", is.jwks)
	mux.HandleFunc("GET /token", is.token)
	mux.HandleFunc("POST /rotate", func(w http.ResponseWriter, _ *http.Request) {
		if err := is.Rotate(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	is.srv = &http.Server{Handler: mux, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = is.srv.Serve(lis) }()
	return is, nil
}

// URL is the issuer URL (the iss of its tokens).
func (is *Issuer) URL() string { return is.url }

// Audience is the aud of its tokens unless a Claims says otherwise.
func (is *Issuer) Audience() string { return is.audience }

// Close stops serving.
func (is *Issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return is.srv.Shutdown(ctx)
}

// Rotate adds a new signing key: tokens are signed with it from now on, and
// the earlier keys stay published, so tokens already issued stay valid (the
// usual overlap of a key rotation).
func (is *Issuer) Rotate() error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return fmt.Errorf("dev issuer: key: %w", err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = append(is.keys, k)
	is.kids = append(is.kids, "dev-"+hex.EncodeToString(b[:]))
	return nil
}

// Claims describe a token to sign.
type Claims struct {
	Subject string
	Roles   []string
	// TTL is the lifetime from now (default 1 h); negative gives a token
	// that has already expired.
	TTL time.Duration
	// Audience overrides the issuer's audience (a wrong-audience token).
	Audience string
	// Issuer overrides the iss claim (a token from another issuer).
	Issuer string
	// Forged signs with a key the issuer never published, under the current
	// key id (a bad signature).
	Forged bool
}

// Token signs a JWT for c.
func (is *Issuer) Token(c Claims) (string, error) {
	if c.TTL == 0 {
		c.TTL = time.Hour
	}
	if c.Audience == "" {
		c.Audience = is.audience
	}
	if c.Issuer == "" {
		c.Issuer = is.url
	}
	is.mu.Lock()
	key, kid := is.keys[len(is.keys)-1], is.kids[len(is.kids)-1]
	if c.Forged {
		key = is.forger
	}
	is.mu.Unlock()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("dev issuer: signer: %w", err)
	}
	now := time.Now()
	iat := now
	if c.TTL < 0 {
		iat = now.Add(c.TTL - time.Minute)
	}
	std := jwt.Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: jwt.Audience{c.Audience},
		IssuedAt: jwt.NewNumericDate(iat),
		Expiry:   jwt.NewNumericDate(now.Add(c.TTL)),
	}
	roles := c.Roles
	if roles == nil {
		roles = []string{}
	}
	return jwt.Signed(signer).Claims(std).Claims(map[string]any{"roles": roles}).Serialize()
}

func (is *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                is.url,
		"jwks_uri":                              is.url + "/jwks.json",
		"token_endpoint":                        is.url + "/token",
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}

func (is *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	is.mu.Lock()
	set := jose.JSONWebKeySet{}
	for i, k := range is.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: &k.PublicKey, KeyID: is.kids[i], Algorithm: string(jose.RS256), Use: "sig"})
	}
	is.mu.Unlock()
	writeJSON(w, set)
}

// token answers GET /token?sub=alice&roles=shopper[,operator][&ttl=1h] with
// a signed token as plain text, so `TOKEN=$(curl -s ...)` works.
func (is *Issuer) token(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := Claims{Subject: q.Get("sub")}
	if c.Subject == "" {
		http.Error(w, "sub is required", http.StatusBadRequest)
		return
	}
	for _, role := range strings.Split(q.Get("roles"), ",") {
		if role = strings.TrimSpace(role); role != "" {
			c.Roles = append(c.Roles, role)
		}
	}
	if ttl := q.Get("ttl"); ttl != "" {
		d, err := time.ParseDuration(ttl)
		if err != nil || d <= 0 {
			http.Error(w, "ttl must be a positive duration such as 1h", http.StatusBadRequest)
			return
		}
		c.TTL = d
	}
	tok, err := is.Token(c)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = fmt.Fprintln(w, tok)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
