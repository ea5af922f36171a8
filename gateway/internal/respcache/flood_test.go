package respcache

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/shared/config"
)

// BenchmarkFlood sends distinct reads (each a miss whose answer is stored)
// through a full 8 MiB cache under the gateway's GC settings, and reports
// the collections, the heap and the peak RSS: what keeping the answers on
// the Go heap costs (an earlier ring outside the heap did no better).
func BenchmarkFlood(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(config.DefaultGCPercent))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(config.DefaultMemoryLimit))
	c := New(prometheus.NewRegistry(), Options{MaxBytes: 8 << 20, TTL: time.Hour})
	c.Observe(5, true)
	mux := runtime.NewServeMux(runtime.WithMiddlewares(c.Middleware))
	body := bytes.Repeat([]byte("x"), 2<<10)
	_ = mux.HandlePath("GET", "/v1/cars/{car_id}/parts", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		w.Header().Set(HeaderRevision, "5")
		_, _ = w.Write(body)
	})
	var before, after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		req := httptest.NewRequest("GET", "/v1/cars/c"+strconv.Itoa(i)+"/parts", nil)
		i++
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
	}
	goruntime.ReadMemStats(&after)
	b.ReportMetric(float64(after.NumGC-before.NumGC)*1000/float64(b.N), "gc/1k-op")
	b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			kb, _ := strconv.Atoi(strings.Fields(l)[1])
			b.ReportMetric(float64(kb)/1024, "peakRSS-MiB")
		}
	}
}
