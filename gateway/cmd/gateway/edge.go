package main

import (
	"errors"

	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/shared/config"
)

// edgeSettings are the overload-control settings (package edge).
type edgeSettings struct {
	rate, burst, maxInFlight, browsePercent int
	tlsCert, tlsKey                         string
}

// maxClients bounds the per-client buckets kept (about 200 B each).
const maxClients = 100_000

func (e *edgeSettings) define(cfg *config.Set) {
	cfg.Int(&e.rate, "rate-limit", "GATEWAY_RATE_LIMIT", 0, "requests per second each client (authenticated subject, else IP address) may send; more get 429 with Retry-After; 0 turns it off")
	cfg.Int(&e.burst, "rate-burst", "GATEWAY_RATE_BURST", 0, "requests a client may send at once above its rate; 0 means one second's worth")
	cfg.Int(&e.maxInFlight, "max-in-flight", "GATEWAY_MAX_IN_FLIGHT", 128, "requests served at once; more get 503 with Retry-After at once instead of queueing until they time out; 0 turns it off")
	cfg.String(&e.tlsCert, "tls-cert", "GATEWAY_TLS_CERT", "", "PEM certificate (chain) file: with -tls-key, serve HTTPS only (TLS 1.2+, HSTS), reloading the files when they change")
	cfg.String(&e.tlsKey, "tls-key", "GATEWAY_TLS_KEY", "", "PEM private key file of -tls-cert")
	cfg.Int(&e.browsePercent, "browse-percent", "GATEWAY_BROWSE_PERCENT", 75, "percent of GATEWAY_MAX_IN_FLIGHT that browsing may use; the rest is kept for quotes and orders")
}

func (e *edgeSettings) options() edge.Options {
	burst := e.burst
	if burst <= 0 {
		burst = e.rate
	}
	return edge.Options{
		Rate: float64(e.rate), Burst: burst, MaxClients: maxClients,
		MaxInFlight: e.maxInFlight, BrowseShare: float64(e.browsePercent) / 100,
	}
}

// serveTLS reports whether HTTPS is configured: both files or neither.
func (e *edgeSettings) serveTLS() (bool, error) {
	if (e.tlsCert == "") != (e.tlsKey == "") {
		return false, errors.New("GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together")
	}
	return e.tlsCert != "", nil
}
