//go:build tools

// Package kindprometheus pins Prometheus for the offline Kind cluster's
// prom/prometheus stand-in: its Go module (v0.305.0 is Prometheus v3.5.0, the
// version the manifests name) has replace directives, so `go install` refuses
// it; build-bins.sh runs `go build` of cmd/prometheus and cmd/promtool here.
package kindprometheus

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
