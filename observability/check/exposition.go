package check

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Exposition is what one /metrics endpoint served.
type Exposition struct {
	Source   string // URL or file name
	Service  string // service label of carbuild_build_info, "" when absent
	Families map[string]*dto.MetricFamily
}

// ParseExposition parses the Prometheus text format from r.
func ParseExposition(source string, r io.Reader) (*Exposition, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	e := &Exposition{Source: source, Families: fams}
	if bi, ok := fams["carbuild_build_info"]; ok {
		for _, m := range bi.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "service" {
					e.Service = l.GetValue()
				}
			}
		}
	}
	return e, nil
}

// Scrape fetches url in the Prometheus text format and parses it.
func Scrape(ctx context.Context, url string) (*Exposition, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// Ask for the classic text format: OpenMetrics would name counters without _total.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %s", url, resp.Status)
	}
	return ParseExposition(url, resp.Body)
}

// SampleNames returns the names of the series a family puts in the database:
// the family name for counters, gauges and untyped metrics; _bucket, _sum and
// _count for histograms; the name, _sum and _count for summaries.
func SampleNames(f *dto.MetricFamily) []string {
	name := f.GetName()
	switch f.GetType() {
	case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case dto.MetricType_SUMMARY:
		return []string{name, name + "_sum", name + "_count"}
	default:
		return []string{name}
	}
}

// typeSampleNames is SampleNames for a family known only by name and type
// word ("counter", "gauge", "histogram", "summary"), as docs/metrics.md has it.
func typeSampleNames(name, typ string) []string {
	t := map[string]dto.MetricType{
		"counter":   dto.MetricType_COUNTER,
		"gauge":     dto.MetricType_GAUGE,
		"histogram": dto.MetricType_HISTOGRAM,
		"summary":   dto.MetricType_SUMMARY,
	}[typ]
	return SampleNames(&dto.MetricFamily{Name: &name, Type: &t})
}

// Builtin are the series Prometheus itself writes for every target or rule,
// which no binary exposes.
var Builtin = map[string]bool{
	"up":                                    true,
	"scrape_duration_seconds":               true,
	"scrape_samples_scraped":                true,
	"scrape_samples_post_metric_relabeling": true,
	"scrape_series_added":                   true,
	"ALERTS":                                true,
	"ALERTS_FOR_STATE":                      true,
}

// Missing returns, sorted, each referenced metric name that is neither a
// sample of the expositions, nor recorded by a rule, nor Prometheus' own, with
// where it is read: "name (read by: a; b)".
func Missing(refs map[string][]string, recorded map[string]bool, exps []*Exposition) []string {
	exposed := map[string]bool{}
	for _, e := range exps {
		for _, f := range e.Families {
			for _, n := range SampleNames(f) {
				exposed[n] = true
			}
		}
	}
	var missing []string
	for name, where := range refs {
		if exposed[name] || recorded[name] || Builtin[name] {
			continue
		}
		missing = append(missing, fmt.Sprintf("%s (read by: %s)", name, strings.Join(where, "; ")))
	}
	sort.Strings(missing)
	return missing
}

// Ignored reports whether a family is left out of docs/metrics.md: the Go and
// process collectors' and promhttp's own metrics, identical in every binary.
func Ignored(family string) bool {
	return strings.HasPrefix(family, "go_") ||
		strings.HasPrefix(family, "process_") ||
		strings.HasPrefix(family, "promhttp_")
}
