package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/carbuild/carbuild/loadtest/internal/load"
	"github.com/carbuild/carbuild/loadtest/internal/procmon"
	"github.com/carbuild/carbuild/loadtest/internal/report"
	"github.com/carbuild/carbuild/loadtest/internal/scenario"
)

func step(rate float64, p99 float64, errs int) *load.Stats {
	return &load.Stats{Offered: rate, Sent: int(rate) * 5, OK: int(rate)*5 - errs, Errors: errs, Achieved: rate, Latency: load.Latency{P50: p99 / 4, P95: p99 / 2, P99: p99, Max: p99 * 2}}
}

func bench(gwRSS int64, mixedP99 float64, orders scenario.Verification) *report.Bench {
	b := &report.Bench{RunID: "test", Started: time.Now(), Finished: time.Now(), Machine: map[string]string{}, Config: map[string]string{}}
	b.Closed.Reference = &load.Stats{Connections: 64, Achieved: 20000}
	b.Closed.Stack = &load.Stats{Connections: 64, Achieved: 9000}
	b.Closed.Ratio = 0.45
	mem := map[string]procmon.Memory{"gateway": {RSS: gwRSS}, "catalog": {RSS: 20 << 20}, "pricing": {RSS: 20 << 20}}
	cpu := procmon.Usage{Process: map[string]float64{"gateway": 50}, Machine: 60}
	b.Series = []*report.Series{
		{Name: "get-pecas", Steps: []*load.Stats{step(2000, 3, 0), step(5000, 8, 0), step(7500, 30, 0)},
			Memory: []map[string]procmon.Memory{mem, mem, {"gateway": {RSS: 200 << 20}}}, CPU: []procmon.Usage{cpu, cpu, cpu}},
		{Name: "mixed", Steps: []*load.Stats{step(2000, mixedP99, 0)}, Memory: []map[string]procmon.Memory{mem}, CPU: []procmon.Usage{cpu}},
	}
	b.PIDs = map[string]int{"gateway": 1, "catalog": 2, "pricing": 3}
	b.Orders = &orders
	return b
}

func pass(ts []report.Target) map[string]bool {
	m := map[string]bool{}
	for _, t := range ts {
		m[t.Name] = t.Pass
	}
	return m
}

func TestJudgeTargets(t *testing.T) {
	cfg := &config{conns: 64}
	stored := scenario.Verification{Confirmed: 100, Checked: 100, Found: 100, DBCount: 103}

	got := pass(judgeTargets(cfg, bench(40<<20, 9, stored)))
	for name, ok := range got {
		if !ok {
			t.Errorf("all targets met, but %q failed", name)
		}
	}
	if len(got) != 7 {
		t.Errorf("%d targets, want 7", len(got))
	}

	// The 7,500 req/s step used 200 MiB: not a target load, so it does not count.
	got = pass(judgeTargets(cfg, bench(70<<20, 9, stored)))
	if got["RSS of gateway at those loads"] {
		t.Error("gateway at 70 MiB during a target step: want FAIL")
	}

	got = pass(judgeTargets(cfg, bench(40<<20, 11, stored)))
	if got["mixed at a constant 2000 req/s"] {
		t.Error("mixed P99 11 ms: want FAIL")
	}

	lost := scenario.Verification{Confirmed: 100, Checked: 100, Found: 99, DBCount: 100}
	got = pass(judgeTargets(cfg, bench(40<<20, 9, lost)))
	if got["mixed at a constant 2000 req/s"] {
		t.Error("an order not found through the API: want FAIL")
	}
	short := scenario.Verification{Confirmed: 100, Checked: 100, Found: 100, DBCount: 99}
	got = pass(judgeTargets(cfg, bench(40<<20, 9, short)))
	if got["mixed at a constant 2000 req/s"] {
		t.Error("fewer rows in the database than confirmed orders: want FAIL")
	}

	b := bench(40<<20, 9, stored)
	b.Series[0].Steps = b.Series[0].Steps[:1] // stopped before 5,000 req/s
	b.Series[0].StoppedWhy = "at 3000 req/s P99 12 ms > objective 10ms"
	ts := judgeTargets(cfg, b)
	if pass(ts)["get-pecas at a constant 5000 req/s"] {
		t.Error("5,000 req/s never reached: want FAIL")
	}
	b.Closed.Ratio = 0.39
	if pass(judgeTargets(cfg, b))["POST /get-pecas closed loop, 64 conns: stack / reference"] {
		t.Error("ratio 39 %: want FAIL")
	}
}

func TestReportWritten(t *testing.T) {
	dir := t.TempDir()
	b := bench(40<<20, 9, scenario.Verification{Confirmed: 1, Checked: 1, Found: 1, DBCount: -1, DBNote: "not counted"})
	b.Targets = judgeTargets(&config{conns: 64}, b)
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"report.md", "report.json", "get-pecas-throughput.png", "get-pecas-latency.png", "mixed-latency.png", "p99-all.png"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "report.md"))
	for _, want := range []string{"| get-pecas at a constant 5000 req/s | P99 ≤ 10 ms, 0 errors | P99 8.00 ms, 0 errors of 25000 | **PASS** |", "![p99-all](p99-all.png)"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestParseOverloadFlags(t *testing.T) {
	tests := []struct {
		args       []string
		wantErr    bool
		wantSeries string
		wantConns  int
	}{
		{nil, false, "order", 512},
		{[]string{"-overload-series", "get-pecas", "-overload-conns", "64", "-pin"}, false, "get-pecas", 64},
		{[]string{"-overload-series", "reference"}, true, "", 0},
		{[]string{"-overload-series", "nope"}, true, "", 0},
	}
	for _, tt := range tests {
		c, err := parseFlags(tt.args)
		if (err != nil) != tt.wantErr {
			t.Errorf("%v: err %v, want error %v", tt.args, err, tt.wantErr)
			continue
		}
		if err == nil && (c.overloadSeries != tt.wantSeries || c.overloadConns != tt.wantConns) {
			t.Errorf("%v: series %q conns %d, want %q %d", tt.args, c.overloadSeries, c.overloadConns, tt.wantSeries, tt.wantConns)
		}
	}
}

func TestPerRequest(t *testing.T) {
	u := procmon.Usage{Process: map[string]float64{"gateway": 50, "pricing": 20, "postgres": 20}}
	for _, c := range []struct {
		name    string
		secs, n float64
		want    map[string]float64
	}{
		// 50 % of a CPU for 10 s is 5 s; over 50,000 requests, 100 µs each.
		{"every watched process", 10, 50_000, map[string]float64{"gateway": 100, "pricing": 40, "postgres": 40}},
		{"nothing admitted", 10, 0, map[string]float64{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := perRequest(u, c.secs, c.n)
			if len(got) != len(c.want) {
				t.Fatalf("perRequest = %v, want %v", got, c.want)
			}
			for k, w := range c.want {
				if math.Abs(got[k]-w) > 1e-9 {
					t.Errorf("perRequest[%s] = %g, want %g", k, got[k], w)
				}
			}
		})
	}
}

func TestSaturationConns(t *testing.T) {
	for _, c := range []struct {
		name, exposition string
		want             int
	}{
		{"bound below -conns", "carbuild_gateway_admission_limit 32\n", 32},
		{"bound above -conns", "carbuild_gateway_admission_limit 128\n", 64},
		{"adaptive bound shrunk to 1", "# TYPE carbuild_gateway_admission_limit gauge\ncarbuild_gateway_admission_limit 1\n", 1},
		{"no bound", "carbuild_gateway_admitted_in_flight 0\n", 64},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, c.exposition) }))
			defer srv.Close()
			if got := saturationConns(context.Background(), srv.Client(), srv.URL, 64); got != c.want {
				t.Errorf("saturationConns = %d, want %d", got, c.want)
			}
		})
	}
	if got := saturationConns(context.Background(), http.DefaultClient, "", 64); got != 64 {
		t.Errorf("no gateway metrics URL: %d connections, want -conns", got)
	}
}

func TestOverloadGoodputNeedsTheOfferedLoad(t *testing.T) {
	for _, c := range []struct {
		name      string
		sent      int
		goodput   float64
		satErrors int // of the saturation loop's 30,000 answers
		wantPass  bool
		wantNote  bool
	}{
		{"offered and good", 28_500, 2_500, 0, true, false},
		{"offered, goodput short", 28_500, 2_000, 0, false, false},
		{"good, but the generator sent a lighter load", 20_000, 2_500, 0, false, true},
		{"good, a few of the saturation loop's answers failed", 28_500, 2_500, 300, true, false},
		{"good against a saturation loop the guard shed", 28_500, 2_500, 301, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := &overload{Offered: 3_000, Saturation: 3_000, SaturationSent: 30_000, SaturationErrors: c.satErrors,
				Seconds: 10, Sent: c.sent, Goodput: c.goodput}
			got := o.targets(3)[0]
			if got.Pass != c.wantPass {
				t.Errorf("goodput target passes = %v, want %v (%s)", got.Pass, c.wantPass, got.Got)
			}
			if note := strings.HasPrefix(got.Got, "not judged"); note != c.wantNote {
				t.Errorf("goodput target says %q; want a 'not judged' note: %v", got.Got, c.wantNote)
			}
		})
	}
}
