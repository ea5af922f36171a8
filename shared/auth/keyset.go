package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// keySet is the issuer's published signing keys, cached. It implements
// oidc.KeySet. Unlike oidc.RemoteKeySet, which fetches the JWKS again for
// every token it cannot verify, it fetches only for a key id it has not
// seen, at most once per RefreshMin, and re-reads the set every RefreshMax:
// a flood of forged tokens costs one signature check each, not one fetch
// each, while a rotated-in key is picked up at its first token.
type keySet struct {
	cfg      Config
	algs     []jose.SignatureAlgorithm
	mu       sync.Mutex
	keys     []jose.JSONWebKey
	jwks     string        // discovered or configured JWKS URL
	at       time.Time     // last successful fetch
	tried    time.Time     // last fetch started
	err      error         // of the last fetch
	inflight chan struct{} // closed when the running fetch ends
	now      func() time.Time
}

func newKeySet(cfg Config) *keySet {
	algs := make([]jose.SignatureAlgorithm, len(cfg.Algorithms))
	for i, a := range cfg.Algorithms {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	return &keySet{cfg: cfg, algs: algs, jwks: cfg.JWKSURL, now: time.Now}
}

// VerifySignature checks the JWS signature of jwt against the issuer's keys
// and returns its payload.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	// A bearer token is a JWT: the compact serialization only (a JSON
	// serialization is refused here, not later).
	jws, err := jose.ParseSignedCompact(jwt, k.algs)
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := k.keysFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, key := range keys {
		if payload, err := jws.Verify(key); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("failed to verify token signature")
}

// keysFor returns the cached keys matching kid (all keys when kid is empty).
// It starts a fetch when the set is older than RefreshMax or holds no such
// key, unless one was tried within RefreshMin; only a caller without a
// matching cached key waits for it. The fetch runs outside the lock and
// outside the caller's context, so a slow issuer never blocks callers whose
// key is cached, and a canceled request does not cancel it for the others.
func (k *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	k.mu.Lock()
	now := k.now()
	match := k.match(kid)
	stale := k.at.IsZero() || now.Sub(k.at) > k.cfg.RefreshMax
	if (stale || len(match) == 0) && k.inflight == nil && (k.tried.IsZero() || now.Sub(k.tried) >= k.cfg.RefreshMin) {
		k.tried = now
		k.inflight = make(chan struct{})
		go k.fetch(k.inflight)
	}
	wait := k.inflight
	k.mu.Unlock()
	if len(match) > 0 {
		return match, nil
	}
	if wait != nil {
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if match = k.match(kid); len(match) > 0 {
		return match, nil
	}
	if k.err != nil {
		return nil, fmt.Errorf("fetching keys: %w", k.err)
	}
	if kid != "" {
		return nil, fmt.Errorf("no key %q in the issuer's key set", kid)
	}
	return nil, errors.New("the issuer's key set is empty")
}

func (k *keySet) match(kid string) []jose.JSONWebKey {
	var out []jose.JSONWebKey
	for _, key := range k.keys {
		if kid == "" || key.KeyID == kid {
			out = append(out, key)
		}
	}
	return out
}

// fetch replaces the cached keys with the issuer's current set; on failure
// the old keys stay (an issuer outage must not log everyone out).
func (k *keySet) fetch(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), k.cfg.HTTPClient.Timeout+time.Second)
	defer cancel()
	keys, jwks, err := k.remote(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.err = err
	if err == nil {
		k.keys, k.jwks, k.at = keys, jwks, k.now()
	}
	k.inflight = nil
	close(done)
}

func (k *keySet) remote(ctx context.Context) ([]jose.JSONWebKey, string, error) {
	k.mu.Lock()
	jwks := k.jwks
	k.mu.Unlock()
	if jwks == "" {
		var doc struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := k.getJSON(ctx, strings.TrimSuffix(k.cfg.Issuer, "/")+"/.well-known/openid-configuration", &doc); err != nil {
			return nil, "", fmt.Errorf("discovery: %w", err)
		}
		if doc.Issuer != k.cfg.Issuer {
			return nil, "", fmt.Errorf("discovery: issuer %q does not match the configured %q", doc.Issuer, k.cfg.Issuer)
		}
		if doc.JWKSURI == "" {
			return nil, "", errors.New("discovery: no jwks_uri")
		}
		jwks = doc.JWKSURI
	}
	var set jose.JSONWebKeySet
	if err := k.getJSON(ctx, jwks, &set); err != nil {
		return nil, "", err
	}
	var keys []jose.JSONWebKey
	for _, key := range set.Keys {
		if (key.Use == "" || key.Use == "sig") && key.IsPublic() && key.Valid() {
			keys = append(keys, key)
		}
	}
	return keys, jwks, nil
}

func (k *keySet) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := k.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}
