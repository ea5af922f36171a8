package rest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/gateway/internal/edge"
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

// BenchmarkRefusal measures what a refused request costs, over loopback
// HTTP/1.1 with keep-alive as the overload bench sends it: the gateway's
// whole chain refusing with 429 (the same middleware and answer as the
// overload guard's 503) against a bare net/http handler writing the same
// answer. The difference is what the chain adds to net/http and the kernel.
// cpu-µs/op is the whole process (client and server).
func BenchmarkRefusal(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h.Set("Retry-After", "1")
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(`{"code":429,"status":"RESOURCE_EXHAUSTED","message":"too many requests from this client; retry after the time in Retry-After"}` + "\n"))
	})
	gateway := newHandlerWith(b, edge.New(prometheus.NewRegistry(), edge.Options{Rate: 1e-9, Burst: 1, MaxClients: 16, MaxInFlight: 128}))
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"gateway", gateway}} {
		b.Run(tc.name, func(b *testing.B) {
			srv := httptest.NewServer(tc.h)
			defer srv.Close()
			client := srv.Client()
			body := `{"items":[{"partId":"7","quantity":1}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"},"idempotencyKey":"k"}`
			send := func() int {
				r, err := http.NewRequest("POST", srv.URL+"/v1/orders", strings.NewReader(body))
				if err != nil {
					b.Fatal(err)
				}
				r.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				return resp.StatusCode
			}
			send() // the gateway admits the client's first request (its burst)
			b.ReportAllocs()
			cpu0 := cpuTime()
			for b.Loop() {
				if code := send(); code != http.StatusTooManyRequests {
					b.Fatalf("status %d, want 429", code)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
		})
	}
}
