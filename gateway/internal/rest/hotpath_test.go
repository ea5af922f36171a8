package rest_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHotPath measures the gateway's work per request of the mixed
// journey's routes: the real handler (middleware, grpc-gateway, JSON, gRPC
// client) over an in-memory gRPC connection to backends that answer at once.
// Besides the wall time per request it reports cpu-µs/op, the process's CPU
// time (user + system, from getrusage) per request: on a busy machine the
// wall time counts waiting for a CPU, the CPU time does not. The figure
// includes the in-memory backend's side of each call. `make bench` measures
// the same routes over the network against the real backends.
func BenchmarkHotPath(b *testing.B) {
	h := newHandler(b)
	for _, tc := range []struct{ name, method, path, body string }{
		{"quote", "POST", "/v1/quotes", `{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`},
		{"order", "POST", "/v1/orders", `{"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"},"idempotencyKey":"bench-20261206T081658Z-12345","items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}`},
		{"health", "GET", "/health", ``},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					b.Fatalf("%s %s: %d %s", tc.method, tc.path, w.Code, w.Body)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
