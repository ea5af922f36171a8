// Package metrics builds the Prometheus registry and the metrics HTTP server
// of a service: Go runtime and process collectors, build information, and
// optionally net/http/pprof beside /metrics.
package metrics

import (
	"net/http"
	"net/http/pprof"
	"runtime"
	"time"

	"github.com/carbuild/carbuild/shared/buildinfo"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a private registry with the Go and process collectors
// and carbuild_build_info for service.
func NewRegistry(service string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "carbuild_build_info",
		Help: "Build information of the running binary; always 1.",
		ConstLabels: prometheus.Labels{
			"service":    service,
			"version":    buildinfo.Version,
			"commit":     buildinfo.Commit,
			"go_version": runtime.Version(),
		},
	})
	info.Set(1)
	reg.MustRegister(info)
	return reg
}

// Handler serves reg in the Prometheus exposition format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg, EnableOpenMetrics: false})
}

// Mux returns the metrics mux: /metrics, and /debug/pprof/ when pprof is on.
func Mux(reg *prometheus.Registry, withPprof bool) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(reg))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// NewHTTPServer returns an http.Server with the read, write and idle timeouts
// every server of ours has. writeTimeout must cover the slowest handler (a
// 30 s CPU profile needs more than that).
func NewHTTPServer(addr string, h http.Handler, writeTimeout time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
}
