package proof

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// PromConfig is the part of a Prometheus configuration the checks read.
type PromConfig struct {
	RuleFiles     []string `json:"rule_files"`
	ScrapeConfigs []struct {
		JobName      string `json:"job_name"`
		MetricsPath  string `json:"metrics_path"`
		KubernetesSD []struct {
			Role       string `json:"role"`
			Namespaces struct {
				Names []string `json:"names"`
			} `json:"namespaces"`
		} `json:"kubernetes_sd_configs"`
		Relabel []Relabel `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

// Relabel is one relabel_configs entry.
type Relabel struct {
	SourceLabels []string `json:"source_labels"`
	Separator    *string  `json:"separator"`
	Regex        *string  `json:"regex"`
	TargetLabel  string   `json:"target_label"`
	Replacement  *string  `json:"replacement"`
	Action       string   `json:"action"`
}

var promSanitize = regexp.MustCompile(`[^a-zA-Z0-9_]`)

// PodTargets returns what kubernetes_sd_configs role "pod" discovers for a
// pod: one target per declared container port, one per container without
// ports, with the __meta_kubernetes_pod_* labels Prometheus documents.
func PodTargets(w Workload, podName string) []map[string]string {
	base := map[string]string{
		"__meta_kubernetes_namespace":           w.Namespace,
		"__meta_kubernetes_pod_name":            podName,
		"__meta_kubernetes_pod_ip":              "10.244.0.10",
		"__meta_kubernetes_pod_node_name":       "carbuild-worker",
		"__meta_kubernetes_pod_phase":           "Running",
		"__meta_kubernetes_pod_ready":           "true",
		"__meta_kubernetes_pod_controller_kind": w.Kind,
	}
	for k, v := range w.Template.Labels {
		base["__meta_kubernetes_pod_label_"+promSanitize.ReplaceAllString(k, "_")] = v
		base["__meta_kubernetes_pod_labelpresent_"+promSanitize.ReplaceAllString(k, "_")] = "true"
	}
	for k, v := range w.Template.Annotations {
		base["__meta_kubernetes_pod_annotation_"+promSanitize.ReplaceAllString(k, "_")] = v
		base["__meta_kubernetes_pod_annotationpresent_"+promSanitize.ReplaceAllString(k, "_")] = "true"
	}
	var out []map[string]string
	add := func(c corev1.Container, p *corev1.ContainerPort) {
		t := map[string]string{}
		for k, v := range base {
			t[k] = v
		}
		t["__meta_kubernetes_pod_container_name"] = c.Name
		t["__meta_kubernetes_pod_container_image"] = c.Image
		t["__address__"] = base["__meta_kubernetes_pod_ip"]
		if p != nil {
			t["__address__"] += ":" + strconv.Itoa(int(p.ContainerPort))
			t["__meta_kubernetes_pod_container_port_name"] = p.Name
			t["__meta_kubernetes_pod_container_port_number"] = strconv.Itoa(int(p.ContainerPort))
			t["__meta_kubernetes_pod_container_port_protocol"] = "TCP"
		}
		out = append(out, t)
	}
	for _, c := range w.Template.Spec.Containers {
		if len(c.Ports) == 0 {
			add(c, nil)
		}
		for i := range c.Ports {
			add(c, &c.Ports[i])
		}
	}
	return out
}

// ApplyRelabel runs relabel rules (keep, drop, replace) on a target; it
// returns nil when the target is dropped.
func ApplyRelabel(t map[string]string, rules []Relabel) (map[string]string, error) {
	for _, r := range rules {
		sep := ";"
		if r.Separator != nil {
			sep = *r.Separator
		}
		expr := "(.*)"
		if r.Regex != nil {
			expr = *r.Regex
		}
		re, err := regexp.Compile("^(?:" + expr + ")$")
		if err != nil {
			return nil, err
		}
		var vals []string
		for _, l := range r.SourceLabels {
			vals = append(vals, t[l])
		}
		val := strings.Join(vals, sep)
		switch r.Action {
		case "keep":
			if !re.MatchString(val) {
				return nil, nil
			}
		case "drop":
			if re.MatchString(val) {
				return nil, nil
			}
		case "", "replace":
			m := re.FindStringSubmatchIndex(val)
			if m == nil {
				continue
			}
			repl := "$1"
			if r.Replacement != nil {
				repl = *r.Replacement
			}
			res := string(re.ExpandString(nil, repl, val, m))
			if res == "" {
				delete(t, r.TargetLabel)
			} else {
				t[r.TargetLabel] = res
			}
		default:
			return nil, fmt.Errorf("relabel action %q is not simulated; extend ApplyRelabel", r.Action)
		}
	}
	return t, nil
}

// Scraped lists, per workload, the targets the Kubernetes scrape jobs of a
// Prometheus configuration keep for one pod of it.
func Scraped(cfg *PromConfig, o *Objects) (map[string][]map[string]string, error) {
	out := map[string][]map[string]string{}
	for _, sc := range cfg.ScrapeConfigs {
		for _, sd := range sc.KubernetesSD {
			if sd.Role != "pod" {
				return nil, fmt.Errorf("job %s: role %q: only role pod is used", sc.JobName, sd.Role)
			}
			for _, w := range o.Workloads() {
				if len(sd.Namespaces.Names) > 0 && !containsStr(sd.Namespaces.Names, w.Namespace) {
					continue
				}
				for _, t := range PodTargets(w, w.Name+"-0") {
					t["job"] = sc.JobName
					t["__metrics_path__"] = "/metrics"
					if sc.MetricsPath != "" {
						t["__metrics_path__"] = sc.MetricsPath
					}
					kept, err := ApplyRelabel(t, sc.Relabel)
					if err != nil {
						return nil, fmt.Errorf("job %s: %w", sc.JobName, err)
					}
					if kept != nil {
						out[w.Name] = append(out[w.Name], kept)
					}
				}
			}
		}
	}
	return out, nil
}

func containsStr(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// MetricsPorts is where each service serves /metrics.
var MetricsPorts = map[string]string{"catalog": "9091", "pricing": "9092", "gateway": "9093"}

// CheckScrape checks one target per pod of each service, on its metrics port,
// with job = the service name (what the rules and dashboard select on), and
// no target for any other pod.
func CheckScrape(cfg *PromConfig, o *Objects) []error {
	got, err := Scraped(cfg, o)
	if err != nil {
		return []error{err}
	}
	var errs []error
	for _, w := range o.Workloads() {
		ts := got[w.Name]
		port, want := MetricsPorts[w.Name]
		if !want {
			if len(ts) > 0 {
				errs = append(errs, fmt.Errorf("%s: %d unexpected scrape targets", w, len(ts)))
			}
			continue
		}
		if len(ts) != 1 {
			errs = append(errs, fmt.Errorf("%s: %d scrape targets per pod, want exactly 1", w, len(ts)))
			continue
		}
		t := ts[0]
		if !strings.HasSuffix(t["__address__"], ":"+port) || t["__metrics_path__"] != "/metrics" {
			errs = append(errs, fmt.Errorf("%s: scraped at %s%s, want port %s /metrics", w, t["__address__"], t["__metrics_path__"], port))
		}
		if t["job"] != w.Name || t["pod"] == "" || t["namespace"] == "" {
			errs = append(errs, fmt.Errorf("%s: target labels job=%q pod=%q namespace=%q, want job=%s and pod/namespace set", w, t["job"], t["pod"], t["namespace"], w.Name))
		}
	}
	return errs
}

// ConfigMapData returns a ConfigMap's data by name prefix (generated names
// carry a hash suffix).
func ConfigMapData(o *Objects, name string) (map[string]string, error) {
	for _, c := range o.ConfigMaps {
		if c.Name == name || strings.HasPrefix(c.Name, name+"-") && len(c.Name) == len(name)+11 {
			return c.Data, nil
		}
	}
	return nil, fmt.Errorf("no ConfigMap %s", name)
}

// ParsePromConfig decodes prometheus.yml (non-strictly: only a subset is typed).
func ParsePromConfig(data string) (*PromConfig, error) {
	var cfg PromConfig
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		return nil, err
	}
	return &cfg, nil
}
