package check

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

// Expr is one PromQL expression found in a file.
type Expr struct {
	Where string // file and position, for messages: "rules/alerts.yml: alert CarbuildTargetDown"
	Query string
}

// ruleFile is the part of a Prometheus rule file this package reads.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Record string `yaml:"record"`
			Alert  string `yaml:"alert"`
			Expr   string `yaml:"expr"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// RuleExprs returns the expressions of the Prometheus rule file at path and
// the metric names its recording rules define.
func RuleExprs(path string) (exprs []Expr, recorded []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	// promtool check rules validates the whole file; only expressions matter here.
	var f ruleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		return nil, nil, fmt.Errorf("parse %s: %w", path, err)
	}
	for _, g := range f.Groups {
		for i, r := range g.Rules {
			var where string
			switch {
			case r.Record != "" && r.Alert == "":
				where = fmt.Sprintf("%s: group %s: record %s", path, g.Name, r.Record)
				recorded = append(recorded, r.Record)
			case r.Alert != "" && r.Record == "":
				where = fmt.Sprintf("%s: group %s: alert %s", path, g.Name, r.Alert)
			default:
				return nil, nil, fmt.Errorf("%s: group %s: rule %d has neither or both of record and alert", path, g.Name, i)
			}
			if strings.TrimSpace(r.Expr) == "" {
				return nil, nil, fmt.Errorf("%s: empty expr", where)
			}
			exprs = append(exprs, Expr{Where: where, Query: r.Expr})
		}
	}
	if len(exprs) == 0 {
		return nil, nil, fmt.Errorf("%s: no rules", path)
	}
	return exprs, recorded, nil
}

// DashboardExprs returns every PromQL expression of the Grafana dashboard at
// path: the expr of each panel target (rows and nested panels included) and
// the metric selectors of query variables (label_values(selector, label),
// query_result(expr)).
func DashboardExprs(path string) ([]Expr, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	var exprs []Expr
	panels, _ := dash["panels"].([]any)
	walkPanels(path, panels, &exprs)

	templating, _ := dash["templating"].(map[string]any)
	vars, _ := templating["list"].([]any)
	for _, v := range vars {
		m, _ := v.(map[string]any)
		if m["type"] != "query" {
			continue
		}
		q := m["query"]
		if qm, ok := q.(map[string]any); ok {
			q = qm["query"]
		}
		qs, _ := q.(string)
		where := fmt.Sprintf("%s: variable %v", path, m["name"])
		if e, ok := variableQuery(qs); ok {
			exprs = append(exprs, Expr{Where: where, Query: e})
		}
	}
	if len(exprs) == 0 {
		return nil, fmt.Errorf("%s: no expressions", path)
	}
	return exprs, nil
}

func walkPanels(path string, panels []any, exprs *[]Expr) {
	for _, p := range panels {
		m, _ := p.(map[string]any)
		title, _ := m["title"].(string)
		targets, _ := m["targets"].([]any)
		for _, t := range targets {
			tm, _ := t.(map[string]any)
			e, _ := tm["expr"].(string)
			if e == "" {
				continue
			}
			*exprs = append(*exprs, Expr{
				Where: fmt.Sprintf("%s: panel %q target %v", path, title, tm["refId"]),
				Query: e,
			})
		}
		nested, _ := m["panels"].([]any)
		walkPanels(path, nested, exprs)
	}
}

var (
	labelValuesRE = regexp.MustCompile(`^\s*label_values\(\s*(.+)\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)
	queryResultRE = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
)

// variableQuery returns the PromQL inside a Grafana Prometheus variable
// query, if it has one (label_values(label) and label_names() do not).
func variableQuery(q string) (string, bool) {
	if m := labelValuesRE.FindStringSubmatch(q); m != nil {
		return m[1], true
	}
	if m := queryResultRE.FindStringSubmatch(q); m != nil {
		return m[1], true
	}
	return "", false
}

var (
	// Grafana's interval variables stand where PromQL wants a duration.
	intervalVarRE = regexp.MustCompile(`\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?`)
	// Any other template variable ($job, ${job}, ${job:regex}, [[job]]) stands
	// inside a label matcher's string.
	templateVarRE = regexp.MustCompile(`\$\{[a-zA-Z_][a-zA-Z0-9_]*(:[a-zA-Z]+)?\}|\$[a-zA-Z_][a-zA-Z0-9_]*|\[\[[a-zA-Z_][a-zA-Z0-9_]*\]\]`)
)

// ExpandGrafanaVariables replaces Grafana template variables with values that
// keep q valid PromQL: durations for the interval variables, a plain word for
// the others (they appear only inside label matcher strings).
func ExpandGrafanaVariables(q string) string {
	q = intervalVarRE.ReplaceAllString(q, "5m")
	return templateVarRE.ReplaceAllString(q, "templatevar")
}

var promqlParser = parser.NewParser(parser.Options{})

// MetricNames parses q (after ExpandGrafanaVariables) and returns the sorted,
// distinct metric names its selectors read. A selector must name its metric
// with a literal name or an equality matcher on __name__: a regexp over names
// cannot be checked against what the binaries expose, so it is an error.
func MetricNames(q string) ([]string, error) {
	expr, err := promqlParser.ParseExpr(ExpandGrafanaVariables(q))
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var selErr error
	parser.Inspect(expr, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name != model.MetricNameLabel {
				continue
			}
			if m.Type != labels.MatchEqual {
				selErr = fmt.Errorf("selector %s matches metric names with %s: name metrics literally", vs, m.Type)
				continue
			}
			name = m.Value
		}
		if name == "" {
			selErr = fmt.Errorf("selector %s names no metric", vs)
			return nil
		}
		seen[name] = true
		return nil
	})
	if selErr != nil {
		return nil, selErr
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// References maps each metric name the expressions read to the places that
// read it. Parse errors are returned together, one per expression.
func References(exprs []Expr) (map[string][]string, []error) {
	refs := map[string][]string{}
	var errs []error
	for _, e := range exprs {
		names, err := MetricNames(e.Query)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w\n\t%s", e.Where, err, strings.TrimSpace(e.Query)))
			continue
		}
		if len(names) == 0 {
			errs = append(errs, fmt.Errorf("%s: reads no metric\n\t%s", e.Where, strings.TrimSpace(e.Query)))
			continue
		}
		for _, n := range names {
			refs[n] = append(refs[n], e.Where)
		}
	}
	return refs, errs
}
