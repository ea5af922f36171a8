package check

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// DocMetric is one row of the metric table in docs/metrics.md.
type DocMetric struct {
	Name      string   // family name, as exposed (counters end in _total)
	Type      string   // counter, gauge, histogram or summary
	ExposedBy []string // services: catalog, pricing, gateway
	Line      int
}

// SampleNames returns the series names the documented family produces.
func (m DocMetric) SampleNames() []string { return typeSampleNames(m.Name, m.Type) }

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	firstCellRE  = regexp.MustCompile("^\\|\\s*`([^`]+)`\\s*\\|")
	docTypes     = map[string]bool{"counter": true, "gauge": true, "histogram": true, "summary": true}
)

// Services are the binaries that serve metrics.
var Services = []string{"catalog", "pricing", "gateway"}

// ParseDoc reads the metric table of docs/metrics.md: the table whose header
// starts with "| Metric | Type |", and whose rows hold the family name in
// backquotes in the first column, then the type, the labels, the services
// that expose it (comma-separated) and the meaning.
func ParseDoc(path string) ([]DocMetric, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()

	var (
		out     []DocMetric
		inTable bool
		seen    = map[string]int{}
		sc      = bufio.NewScanner(f)
		line    int
	)
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if !inTable {
			if strings.HasPrefix(strings.ReplaceAll(text, " ", ""), "|Metric|Type|") {
				inTable = true
			}
			continue
		}
		if !strings.HasPrefix(text, "|") {
			if len(out) > 0 {
				break // end of the table
			}
			continue
		}
		if strings.HasPrefix(strings.ReplaceAll(text, " ", ""), "|---") {
			continue
		}
		m := firstCellRE.FindStringSubmatch(text)
		if m == nil {
			return nil, fmt.Errorf("%s:%d: first column is not a `backquoted` metric name: %s", path, line, text)
		}
		cells := strings.Split(strings.Trim(text, "|"), "|")
		if len(cells) < 5 {
			return nil, fmt.Errorf("%s:%d: want 5 columns (metric, type, labels, exposed by, meaning), got %d", path, line, len(cells))
		}
		dm := DocMetric{Name: m[1], Type: strings.TrimSpace(cells[1]), Line: line}
		if !metricNameRE.MatchString(dm.Name) {
			return nil, fmt.Errorf("%s:%d: %q is not a metric name", path, line, dm.Name)
		}
		if !docTypes[dm.Type] {
			return nil, fmt.Errorf("%s:%d: %s: type %q is not counter, gauge, histogram or summary", path, line, dm.Name, dm.Type)
		}
		for _, s := range strings.Split(cells[3], ",") {
			s = strings.TrimSpace(s)
			if !contains(Services, s) {
				return nil, fmt.Errorf("%s:%d: %s: exposed by %q, want some of %v", path, line, dm.Name, s, Services)
			}
			dm.ExposedBy = append(dm.ExposedBy, s)
		}
		if prev, dup := seen[dm.Name]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice (first on line %d)", path, line, dm.Name, prev)
		}
		seen[dm.Name] = line
		out = append(out, dm)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no metric table (header \"| Metric | Type | ...\")", path)
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// DocDiff compares the documented metrics with the expositions of the
// services. It returns, sorted:
//   - undocumented: families a service exposes that the doc does not list for
//     it (the Ignored families aside);
//   - unexposed: families the doc lists for a service that it does not expose;
//   - mistyped: families whose exposed type differs from the documented one.
//
// Every exposition must name its service (carbuild_build_info{service}), and
// every service must be scraped.
func DocDiff(doc []DocMetric, exps []*Exposition) (undocumented, unexposed, mistyped []string, err error) {
	byService := map[string]*Exposition{}
	for _, e := range exps {
		if e.Service == "" {
			return nil, nil, nil, fmt.Errorf("%s: no carbuild_build_info{service=...}: cannot tell which service this is", e.Source)
		}
		if other, dup := byService[e.Service]; dup {
			return nil, nil, nil, fmt.Errorf("%s and %s both say they are %s", other.Source, e.Source, e.Service)
		}
		byService[e.Service] = e
	}
	for _, s := range Services {
		if byService[s] == nil {
			return nil, nil, nil, fmt.Errorf("no exposition of service %s among %d scraped", s, len(exps))
		}
	}

	documented := map[string]map[string]DocMetric{} // service -> family -> row
	for _, m := range doc {
		for _, s := range m.ExposedBy {
			if documented[s] == nil {
				documented[s] = map[string]DocMetric{}
			}
			documented[s][m.Name] = m
		}
	}
	for s, e := range byService {
		for name, f := range e.Families {
			if Ignored(name) {
				continue
			}
			dm, ok := documented[s][name]
			if !ok {
				undocumented = append(undocumented, fmt.Sprintf("%s (exposed by %s)", name, s))
				continue
			}
			if got := strings.ToLower(f.GetType().String()); got != dm.Type {
				mistyped = append(mistyped, fmt.Sprintf("%s (%s exposes a %s, docs say %s)", name, s, got, dm.Type))
			}
		}
		for name := range documented[s] {
			if _, ok := e.Families[name]; !ok {
				unexposed = append(unexposed, fmt.Sprintf("%s (not exposed by %s at %s)", name, s, e.Source))
			}
		}
	}
	sort.Strings(undocumented)
	sort.Strings(unexposed)
	sort.Strings(mistyped)
	return undocumented, unexposed, mistyped, nil
}
