package rest

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are the gateway's RED metrics, labelled by route template
// (never the raw path, so ids don't explode the series count) and by method
// and status code mapped to fixed sets (labels.go).
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight *prometheus.GaugeVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by method, route template and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method, route template and status code.",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "code"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "HTTP requests being served, by method and route template.",
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight)
	return m
}

// routeKey carries the *routeLabel the route handlers fill in.
type routeKey struct{}

type routeLabel struct {
	v     atomic.Pointer[string]
	start time.Time // when measure began the request
}

// route is the template the route handlers reported, OtherRoute if none.
func (l *routeLabel) route() string {
	if p := l.v.Load(); p != nil {
		return *p
	}
	return OtherRoute
}

// OtherRoute labels requests no route matched.
const OtherRoute = "other"

func setRoute(ctx context.Context, route string) {
	if l, ok := ctx.Value(routeKey{}).(*routeLabel); ok {
		l.v.Store(&route)
	}
}

// routeOf returns the route template and the start of the request ctx
// belongs to, as measure and the route handlers recorded them.
func routeOf(ctx context.Context) (route string, start time.Time, ok bool) {
	l, ok := ctx.Value(routeKey{}).(*routeLabel)
	if !ok {
		return OtherRoute, time.Time{}, false
	}
	return l.route(), l.start, true
}

// measure wraps the whole handler: it counts and times every request with
// the route template that the inner handlers reported.
func (m *httpMetrics) measure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		label := &routeLabel{start: start}
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), routeKey{}, label)))
		route := label.route()
		if rw.code == http.StatusNotFound && route == "/" {
			route = OtherRoute // the storefront's catch-all did not match a file
		}
		method, code := methodLabel(r.Method), codeLabel(rw.code)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.duration.WithLabelValues(method, route, code).Observe(time.Since(start).Seconds())
	})
}

// route names a plain handler's route for the metrics and tracks it in flight.
func (m *httpMetrics) route(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r.Context(), route)
		g := m.inFlight.WithLabelValues(methodLabel(r.Method), route)
		g.Inc()
		defer g.Dec()
		next.ServeHTTP(w, r)
	})
}

// gatewayRoute is a grpc-gateway middleware doing the same for generated
// routes, whose template it reads from the matched pattern.
func (m *httpMetrics) gatewayRoute(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		route := OtherRoute
		if p, ok := runtime.HTTPPattern(r.Context()); ok {
			route = template(p.String())
		}
		setRoute(r.Context(), route)
		g := m.inFlight.WithLabelValues(methodLabel(r.Method), route)
		g.Inc()
		defer g.Dec()
		next(w, r, params)
	}
}

// template turns grpc-gateway's "/v1/cars/{car_id=*}/parts" into the
// google.api.http spelling "/v1/cars/{car_id}/parts".
func template(p string) string { return strings.ReplaceAll(p, "=*}", "}") }

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code        int
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.code, w.wroteHeader = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wroteHeader = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer (flush).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
