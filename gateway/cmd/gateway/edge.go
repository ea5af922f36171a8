package main

import (
	"errors"
	"time"

	"github.com/carbuild/carbuild/gateway/internal/edge"
	"github.com/carbuild/carbuild/shared/config"
)

// edgeSettings are the overload-control settings (package edge).
type edgeSettings struct {
	rate, burst, maxInFlight, browsePercent int
	latencyTarget                           time.Duration
	tlsCert, tlsKey                         string
}

// minInFlight is the floor of the adaptive bound: a few requests are
// always admitted, so the latency that lets it grow again is measured.
const minInFlight = 4

// maxClients bounds the per-client buckets kept (about 200 B each).
const maxClients = 100_000

func (e *edgeSettings) define(cfg *config.Set) {
	cfg.Int(&e.rate, "rate-limit", "GATEWAY_RATE_LIMIT", 0, "requests per second each client (authenticated subject, else IP address) may send; more get 429 with Retry-After; 0 turns it off")
	cfg.Int(&e.burst, "rate-burst", "GATEWAY_RATE_BURST", 0, "requests a client may send at once above its rate; 0 means one second's worth")
	cfg.Int(&e.maxInFlight, "max-in-flight", "GATEWAY_MAX_IN_FLIGHT", 128, "requests served at once; more get 503 with Retry-After at once instead of queueing until they time out; 0 turns it off")
	cfg.String(&e.tlsCert, "tls-cert", "GATEWAY_TLS_CERT", "", "PEM certificate (chain) file: with -tls-key, serve HTTPS only (TLS 1.2+, HSTS), reloading the files when they change")
	cfg.String(&e.tlsKey, "tls-key", "GATEWAY_TLS_KEY", "", "PEM private key file of -tls-cert")
	cfg.Duration(&e.latencyTarget, "latency-target", "GATEWAY_LATENCY_TARGET", 0, "when set, GATEWAY_MAX_IN_FLIGHT is the ceiling of an adaptive bound that shrinks while more than a tenth of the admitted requests take longer than this (and grows back); 0 keeps the bound fixed")
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
		LatencyTarget: e.latencyTarget, MinInFlight: minInFlight,
	}
}

// serveTLS reports whether HTTPS is configured: both files or neither.
func (e *edgeSettings) serveTLS() (bool, error) {
	if (e.tlsCert == "") != (e.tlsKey == "") {
		return false, errors.New("GATEWAY_TLS_CERT and GATEWAY_TLS_KEY go together")
	}
	return e.tlsCert != "", nil
}
