package check

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Paths from this package's directory (go test runs in it).
var (
	rulesGlob     = filepath.Join("..", "prometheus", "rules", "*.yml")
	dashboardGlob = filepath.Join("..", "grafana", "dashboards", "*.json")
	docPath       = filepath.Join("..", "..", "docs", "metrics.md")
	fakeGlob      = filepath.Join("testdata", "exposition", "*.prom")
)

// warmUpOnce keeps the warm-up to one per test binary.
var warmUpOnce sync.Once

const defaultMetricsURLs = "http://127.0.0.1:9093/metrics,http://127.0.0.1:9091/metrics,http://127.0.0.1:9092/metrics"

// corpus is every PromQL expression of the rules and dashboards.
type corpus struct {
	exprs    []Expr
	recorded map[string]bool
}

func loadCorpus(t *testing.T) corpus {
	t.Helper()
	c := corpus{recorded: map[string]bool{}}
	rules, _ := filepath.Glob(rulesGlob)
	dashboards, _ := filepath.Glob(dashboardGlob)
	if len(rules) == 0 || len(dashboards) == 0 {
		t.Fatalf("found %d rule files (%s) and %d dashboards (%s); want some of each", len(rules), rulesGlob, len(dashboards), dashboardGlob)
	}
	for _, p := range rules {
		exprs, recorded, err := RuleExprs(p)
		if err != nil {
			t.Fatal(err)
		}
		c.exprs = append(c.exprs, exprs...)
		for _, r := range recorded {
			c.recorded[r] = true
		}
	}
	for _, p := range dashboards {
		exprs, err := DashboardExprs(p)
		if err != nil {
			t.Fatal(err)
		}
		c.exprs = append(c.exprs, exprs...)
	}
	return c
}

// references parses the corpus and fails the test on any parse error.
func (c corpus) references(t *testing.T) map[string][]string {
	t.Helper()
	refs, errs := References(c.exprs)
	for _, err := range errs {
		t.Error(err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return refs
}

// TestOfflineExpressionsParse parses every expression of the rules and the
// dashboard and checks that each reads metrics that docs/metrics.md
// documents, a rule records, Prometheus writes itself, or the Go/process
// collectors provide. No services needed.
func TestOfflineExpressionsParse(t *testing.T) {
	c := loadCorpus(t)
	refs := c.references(t)
	doc, err := ParseDoc(docPath)
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range doc {
		for _, n := range m.SampleNames() {
			documented[n] = true
		}
	}
	var unknown []string
	for name, where := range refs {
		switch {
		case documented[name], c.recorded[name], Builtin[name], Ignored(name):
		default:
			unknown = append(unknown, fmt.Sprintf("%s (read by: %s)", name, strings.Join(where, "; ")))
		}
	}
	sort.Strings(unknown)
	if len(unknown) > 0 {
		t.Errorf("%d metric names are read by rules or panels but documented nowhere in %s nor recorded by a rule:\n\t%s",
			len(unknown), docPath, strings.Join(unknown, "\n\t"))
	}
	t.Logf("%d expressions read %d distinct metrics (%d recorded by rules)", len(c.exprs), len(refs), len(c.recorded))
}

func TestOfflineMetricNames(t *testing.T) {
	tests := []struct {
		name    string
		query   string
		want    []string
		wantErr bool
	}{
		{"histogram quantile with grafana variables",
			`histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{job=~"$job",route="${route}"}[$__rate_interval])))`,
			[]string{"http_request_duration_seconds_bucket"}, false},
		{"binary expression, recording rule names", `job:slo_errors:ratio_rate1h > (14.4 * 0.001) and job:slo_errors:ratio_rate5m > 0`,
			[]string{"job:slo_errors:ratio_rate1h", "job:slo_errors:ratio_rate5m"}, false},
		{"name matcher", `{__name__="up", job="catalog"} == 0`, []string{"up"}, false},
		{"sum and count keep their suffix", `rate(x_sum[5m]) / rate(x_count[5m])`, []string{"x_count", "x_sum"}, false},
		{"subquery and offset", `max_over_time(rate(a_total[1m])[10m:1m] offset 5m)`, []string{"a_total"}, false},
		{"regexp over names is refused", `{__name__=~"grpc_.*"}`, nil, true},
		{"syntax error", `sum(rate(x[5m])`, nil, true},
		{"unknown function", `rated(x[5m])`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MetricNames(tt.query)
			if (err != nil) != tt.wantErr {
				t.Fatalf("MetricNames(%q) error = %v, want error %v", tt.query, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MetricNames(%q) mismatch (-want +got):\n%s", tt.query, diff)
			}
		})
	}
}

func TestOfflineVariableQuery(t *testing.T) {
	tests := []struct {
		query  string
		want   string
		wantOK bool
	}{
		{"label_values(carbuild_build_info, job)", "carbuild_build_info", true},
		{`label_values(up{job=~"a|b", x="1"}, instance)`, `up{job=~"a|b", x="1"}`, true},
		{"query_result(topk(3, rate(x_total[5m])))", "topk(3, rate(x_total[5m]))", true},
		{"label_values(job)", "", false},
		{"label_names()", "", false},
	}
	for _, tt := range tests {
		got, ok := variableQuery(tt.query)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("variableQuery(%q) = %q, %v; want %q, %v", tt.query, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestOfflineDocTable(t *testing.T) {
	doc, err := ParseDoc(docPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range doc {
		if (m.Type == "counter") != strings.HasSuffix(m.Name, "_total") {
			t.Errorf("%s:%d: %s is a %s: counters, and only counters, end in _total", docPath, m.Line, m.Name, m.Type)
		}
		if Ignored(m.Name) {
			t.Errorf("%s:%d: %s is a runtime/promhttp metric, which the table leaves out", docPath, m.Line, m.Name)
		}
	}
	t.Logf("%s documents %d metric families", docPath, len(doc))
}

func TestOfflineParseDoc(t *testing.T) {
	const header = "# M\n\n| Metric | Type | Labels | Exposed by | Meaning |\n| --- | --- | --- | --- | --- |\n"
	tests := []struct {
		name    string
		body    string
		want    []DocMetric
		wantErr string
	}{
		{"good", header +
			"| `a_total` | counter | `x` | catalog, pricing | A. |\n" +
			"| `b_seconds` | histogram | — | gateway | B. |\n\nAfter the table: | `not_a_row` |\n",
			[]DocMetric{
				{Name: "a_total", Type: "counter", ExposedBy: []string{"catalog", "pricing"}, Line: 5},
				{Name: "b_seconds", Type: "histogram", ExposedBy: []string{"gateway"}, Line: 6},
			}, ""},
		{"no backquotes", header + "| a_total | counter | | catalog | A. |\n", nil, "backquoted"},
		{"bad type", header + "| `a_total` | count | | catalog | A. |\n", nil, "type"},
		{"unknown service", header + "| `a_total` | counter | | billing | A. |\n", nil, "exposed by"},
		{"duplicate", header + "| `a_total` | counter | | catalog | A. |\n| `a_total` | counter | | pricing | A. |\n", nil, "twice"},
		{"no table", "# M\n\nNothing here.\n", nil, "no metric table"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "metrics.md")
			if err := os.WriteFile(p, []byte(tt.body), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ParseDoc(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseDoc error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseDoc mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// loadFake reads the fake expositions under testdata, optionally edited
// (service -> function over the text) before parsing.
func loadFake(t *testing.T, edit map[string]func(string) string) []*Exposition {
	t.Helper()
	files, _ := filepath.Glob(fakeGlob)
	if len(files) != len(Services) {
		t.Fatalf("found %d fake expositions (%s), want %d", len(files), fakeGlob, len(Services))
	}
	var exps []*Exposition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		if fn := edit[strings.TrimSuffix(filepath.Base(f), ".prom")]; fn != nil {
			text = fn(text)
		}
		e, err := ParseExposition(f, strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		exps = append(exps, e)
	}
	return exps
}

// dropFamily removes a family's HELP, TYPE and sample lines.
func dropFamily(name string) func(string) string {
	return func(text string) string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			f := strings.Fields(l)
			switch {
			case len(f) >= 3 && f[0] == "#" && (f[1] == "HELP" || f[1] == "TYPE") && f[2] == name:
			case strings.HasPrefix(l, name+"{") || strings.HasPrefix(l, name+" ") ||
				strings.HasPrefix(l, name+"_bucket{") || strings.HasPrefix(l, name+"_sum") || strings.HasPrefix(l, name+"_count"):
			default:
				out = append(out, l)
			}
		}
		return strings.Join(out, "\n")
	}
}

func addText(s string) func(string) string { return func(text string) string { return text + s } }

// TestOfflineChecksBite runs the live checks against the fake expositions
// under testdata: they pass on the complete fake, and report exactly what is
// wrong once a family is removed, added or retyped.
func TestOfflineChecksBite(t *testing.T) {
	c := loadCorpus(t)
	refs := c.references(t)
	doc, err := ParseDoc(docPath)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("complete fake passes", func(t *testing.T) {
		exps := loadFake(t, nil)
		if missing := Missing(refs, c.recorded, exps); len(missing) > 0 {
			t.Errorf("Missing() = %v, want none", missing)
		}
		und, unexp, mis, err := DocDiff(doc, exps)
		if err != nil || len(und)+len(unexp)+len(mis) > 0 {
			t.Errorf("DocDiff() = %v, %v, %v, %v; want all empty", und, unexp, mis, err)
		}
	})

	t.Run("family removed", func(t *testing.T) {
		exps := loadFake(t, map[string]func(string) string{
			"catalog": dropFamily("pgxpool_max_conns"),
			"pricing": dropFamily("pgxpool_max_conns"),
		})
		missing := Missing(refs, c.recorded, exps)
		if len(missing) != 1 || !strings.HasPrefix(missing[0], "pgxpool_max_conns (read by: ") {
			t.Errorf("Missing() = %v, want just pgxpool_max_conns", missing)
		}
		_, unexp, _, err := DocDiff(doc, exps)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"pgxpool_max_conns (not exposed by catalog", "pgxpool_max_conns (not exposed by pricing"}
		if len(unexp) != 2 || !strings.HasPrefix(unexp[0], want[0]) || !strings.HasPrefix(unexp[1], want[1]) {
			t.Errorf("DocDiff() unexposed = %v, want %v...", unexp, want)
		}
	})

	t.Run("histogram removed from one service only", func(t *testing.T) {
		exps := loadFake(t, map[string]func(string) string{"gateway": dropFamily("http_request_duration_seconds")})
		missing := Missing(refs, c.recorded, exps)
		var names []string
		for _, m := range missing {
			names = append(names, strings.Fields(m)[0])
		}
		want := []string{"http_request_duration_seconds_bucket", "http_request_duration_seconds_count"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("Missing() names mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("undocumented and mistyped families", func(t *testing.T) {
		exps := loadFake(t, map[string]func(string) string{
			"gateway": addText("# TYPE carbuild_secret_total counter\ncarbuild_secret_total 1\n# TYPE go_extra gauge\ngo_extra 1\n"),
			"pricing": func(s string) string {
				return strings.Replace(s, "# TYPE carbuild_quotes_total counter", "# TYPE carbuild_quotes_total gauge", 1)
			},
		})
		und, unexp, mis, err := DocDiff(doc, exps)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"carbuild_secret_total (exposed by gateway)"}, und); diff != "" {
			t.Errorf("undocumented mismatch (-want +got):\n%s", diff)
		}
		if len(unexp) != 0 {
			t.Errorf("unexposed = %v, want none", unexp)
		}
		if diff := cmp.Diff([]string{"carbuild_quotes_total (pricing exposes a gauge, docs say counter)"}, mis); diff != "" {
			t.Errorf("mistyped mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("documented for the wrong service", func(t *testing.T) {
		// The gateway exposing pricing's business counter is a finding too.
		exps := loadFake(t, map[string]func(string) string{
			"gateway": addText("# TYPE carbuild_orders_total counter\ncarbuild_orders_total{status=\"confirmed\"} 1\n"),
		})
		und, _, _, err := DocDiff(doc, exps)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"carbuild_orders_total (exposed by gateway)"}, und); diff != "" {
			t.Errorf("undocumented mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("exposition without build info", func(t *testing.T) {
		exps := loadFake(t, map[string]func(string) string{"catalog": dropFamily("carbuild_build_info")})
		if _, _, _, err := DocDiff(doc, exps); err == nil || !strings.Contains(err.Error(), "carbuild_build_info") {
			t.Errorf("DocDiff() error = %v, want one about carbuild_build_info", err)
		}
	})
}

// liveExpositions scrapes CARBUILD_METRICS_URLS. It fails the test, never
// skips it, when a service cannot be scraped. When CARBUILD_WARMUP_URL names
// the gateway, it first sends one request of each kind through it, so the
// families created on first use (HTTP, gRPC client, business) exist.
func liveExpositions(t *testing.T) []*Exposition {
	t.Helper()
	ctx := t.Context()
	if base := os.Getenv("CARBUILD_WARMUP_URL"); base != "" {
		warmUpOnce.Do(func() { warmUp(t, ctx, strings.TrimRight(base, "/")) })
	}
	urls := os.Getenv("CARBUILD_METRICS_URLS")
	if urls == "" {
		urls = defaultMetricsURLs
	}
	var exps []*Exposition
	for _, u := range strings.Split(urls, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			continue
		}
		e, err := Scrape(ctx, u)
		if err != nil {
			t.Fatalf("%v\n(start the stack first, or set CARBUILD_METRICS_URLS; "+
				"run `go test -run Offline` for the checks that need no services)", err)
		}
		exps = append(exps, e)
	}
	if len(exps) == 0 {
		t.Fatal("CARBUILD_METRICS_URLS lists no URL")
	}
	return exps
}

// warmUp drives each gateway route family once: reads, a quote, an unknown
// part, an order placed twice with one idempotency key (confirmed, then
// replayed), the seed-compatible routes and an unmatched path. Answers are not
// checked here (the e2e tests do that); only transport errors fail.
func warmUp(t *testing.T, ctx context.Context, base string) {
	t.Helper()
	do := func(method, path, body string) []byte {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("warm-up %s %s: %v", method, base+path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return b
	}
	do("GET", "/v1/cars", "")
	do("GET", "/v1/cars/civic/parts", "")
	do("GET", "/v1/parts:batchGet?ids=1&ids=8", "")
	items := `[{"partId":"8","quantity":1}]`
	var quote struct {
		Total json.RawMessage `json:"total"`
	}
	_ = json.Unmarshal(do("POST", "/v1/quotes", `{"items":`+items+`}`), &quote)
	if len(quote.Total) == 0 {
		quote.Total = json.RawMessage(`{"currencyCode":"BRL","minorUnits":"0"}`)
	}
	do("POST", "/v1/quotes", `{"items":[{"partId":"999999","quantity":1}]}`)
	order := fmt.Sprintf(`{"idempotencyKey":"metrics-check-%d","items":%s,"expectedTotal":%s}`, time.Now().UnixNano(), items, quote.Total)
	do("POST", "/v1/orders", order)
	do("POST", "/v1/orders", order)
	do("POST", "/get-pecas", `{"modelo":"Civic","ano":2023}`)
	do("POST", "/calcular", `{"itens":[{"peca":{"id":"8","nome":"","valor":0},"quantidade":1}]}`)
	do("GET", "/no-such-route/metrics-check", "")
}

// TestLiveMetricsExposed checks that every metric the rules and the dashboard
// read is exposed by the running services (or recorded by a rule, or written
// by Prometheus itself).
func TestLiveMetricsExposed(t *testing.T) {
	c := loadCorpus(t)
	refs := c.references(t)
	exps := liveExpositions(t)
	if missing := Missing(refs, c.recorded, exps); len(missing) > 0 {
		var srcs []string
		for _, e := range exps {
			srcs = append(srcs, e.Source)
		}
		t.Errorf("%d metrics read by rules or panels are not exposed by %s:\n\t%s",
			len(missing), strings.Join(srcs, ", "), strings.Join(missing, "\n\t"))
	}
}

// TestLiveDocMatchesExposed checks that docs/metrics.md lists exactly the
// families each running service exposes (runtime and promhttp ones aside).
func TestLiveDocMatchesExposed(t *testing.T) {
	doc, err := ParseDoc(docPath)
	if err != nil {
		t.Fatal(err)
	}
	exps := liveExpositions(t)
	und, unexp, mis, err := DocDiff(doc, exps)
	if err != nil {
		t.Fatal(err)
	}
	if len(und) > 0 {
		t.Errorf("exposed but not in %s:\n\t%s", docPath, strings.Join(und, "\n\t"))
	}
	if len(unexp) > 0 {
		t.Errorf("in %s but not exposed:\n\t%s", docPath, strings.Join(unexp, "\n\t"))
	}
	if len(mis) > 0 {
		t.Errorf("exposed with another type than %s says:\n\t%s", docPath, strings.Join(mis, "\n\t"))
	}
}
