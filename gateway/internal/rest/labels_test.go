package rest_test

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/gateway/internal/backend"
	"github.com/carbuild/carbuild/gateway/internal/rest"
)

// seriesCount is the number of series the registry exposes, and the set of
// values each label took.
func seriesCount(t *testing.T, reg *prometheus.Registry) (int, map[string]map[string]bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n, values := 0, map[string]map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			n++
			for _, l := range m.GetLabel() {
				if values[l.GetName()] == nil {
					values[l.GetName()] = map[string]bool{}
				}
				values[l.GetName()][l.GetValue()] = true
			}
		}
	}
	return n, values
}

// randomToken is a token of 1–12 letters and digits, mostly not a method or
// path anyone registered.
func randomToken(r *rand.Rand) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%:"
	b := make([]byte, 1+r.IntN(12))
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// TestMetricSeriesBounded is the attack of issue #15: requests with made-up
// methods and paths must not add series. A baseline first calls every route
// with every standard method and with one made-up method (the series an
// honest client can create); then 10,000 requests with random made-up
// methods on random paths (unknown ones, and real routes with random ids)
// must leave the series count where the baseline left it, and every label
// value must come from its fixed set.
func TestMetricSeriesBounded(t *testing.T) {
	conn := serveBackends(t, echo{})
	reg := prometheus.NewRegistry()
	watcher := backend.NewWatcher(slog.New(slog.DiscardHandler), time.Second, map[string]*grpc.ClientConn{"catalog": conn, "pricing": conn})
	h, err := rest.New(context.Background(), rest.Options{
		Catalog: conn, Pricing: conn, Backends: watcher, Registry: reg,
		MetricsHandler: http.NotFoundHandler(), MaxBodyBytes: 64 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string) {
		req, err := http.NewRequest(method, "http://gateway"+path, strings.NewReader(`{}`))
		if err != nil {
			return // a target net/http cannot parse never reaches a server
		}
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}

	standard := []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
	paths := []string{"/nope", "/v1/nope", "/%ff", "/v1/./nope" /* 307 to the clean path */, "/v1/cars/%ff/parts", "/healthz", "/readyz", "/metrics", "/openapi.json"}
	for _, rt := range routes {
		paths = append(paths, strings.Replace(rt.path, "{}", "x1", 1))
	}
	for _, m := range append(standard, "M123") {
		for _, p := range paths {
			call(m, p)
		}
	}
	baseline, _ := seriesCount(t, reg)

	r := rand.New(rand.NewPCG(15, 15)) // fixed seed: the same requests every run
	prefixes := []string{"/", "/v1/", "/v1/cars/", "/v1/orders/", "/get-pecas/", "/static/"}
	for range 10000 {
		method := randomToken(r)
		for contains(standard, method) {
			method = randomToken(r)
		}
		var path string
		switch r.IntN(3) {
		case 0:
			path = prefixes[r.IntN(len(prefixes))] + randomToken(r)
		case 1:
			path = "/v1/cars/" + randomToken(r) + "/parts"
		default:
			path = strings.Replace(routes[r.IntN(len(routes))].path, "{}", randomToken(r), 1)
		}
		call(method, path)
	}
	after, values := seriesCount(t, reg)
	t.Logf("series: %d after the baseline, %d after 10,000 random methods and paths", baseline, after)
	if after != baseline {
		t.Errorf("series grew from %d to %d with random methods and paths", baseline, after)
	}
	for v := range values["method"] {
		if v != rest.OtherMethod && !contains(standard, v) {
			t.Errorf("method label %q is not a standard method or %q", v, rest.OtherMethod)
		}
	}
	for v := range values["code"] {
		if _, err := strconv.Atoi(v); (err != nil || http.StatusText(atoi(v)) == "") && v != "other" {
			t.Errorf("code label %q is not a status code", v)
		}
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
