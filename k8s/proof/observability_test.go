package proof

import (
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

func TestPrometheusScrapesOneTargetPerPod(t *testing.T) {
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			o := render(t, overlay).objs
			data, err := ConfigMapData(o, "prometheus-config")
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := ParsePromConfig(data["prometheus.yml"])
			if err != nil {
				t.Fatal(err)
			}
			report(t, "scrape", CheckScrape(cfg, o))
		})
	}
}

// TestPrometheusConfigAndRules runs promtool on the rendered configuration
// with the rules ConfigMap where the Deployment mounts it.
func TestPrometheusConfigAndRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is needed (apt-get install -y prometheus): %v", err)
	}
	o := render(t, "baseline").objs
	cfgData, err := ConfigMapData(o, "prometheus-config")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := ConfigMapData(o, "prometheus-rules")
	if err != nil {
		t.Fatal(err)
	}
	dep := findWorkload(o, "Deployment", "prometheus")
	if dep == nil {
		t.Fatal("no prometheus Deployment")
	}
	rulesMount := ""
	for _, m := range dep.Template.Spec.Containers[0].VolumeMounts {
		if m.Name == "rules" {
			rulesMount = m.MountPath
		}
	}
	if rulesMount == "" {
		t.Fatal("prometheus mounts no rules volume")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "rules"), 0o755)
	for name, body := range rules {
		os.WriteFile(filepath.Join(dir, "rules", name), []byte(body), 0o644)
	}
	cfg := strings.ReplaceAll(cfgData["prometheus.yml"], rulesMount+"/", filepath.Join(dir, "rules")+"/")
	// Debian's promtool is built without Kubernetes service discovery: give it
	// the same jobs with a static target instead, so it still checks every
	// relabel rule, the globals and the rule files. The discovery part is
	// checked by TestPrometheusScrapesOneTargetPerPod.
	var doc map[string]any
	if err := yaml.Unmarshal([]byte(cfg), &doc); err != nil {
		t.Fatal(err)
	}
	for _, sc := range doc["scrape_configs"].([]any) {
		m := sc.(map[string]any)
		if _, ok := m["kubernetes_sd_configs"]; ok {
			delete(m, "kubernetes_sd_configs")
			m["static_configs"] = []any{map[string]any{"targets": []any{"127.0.0.1:9"}}}
		}
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), out, 0o644)
	out, err = exec.Command(promtool, "check", "config", filepath.Join(dir, "prometheus.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "SUCCESS"); n < 1+len(rules) {
		t.Errorf("promtool checked %d files, want the config and %d rule files:\n%s", n, len(rules), out)
	}
}

func TestGrafanaProvisioning(t *testing.T) {
	o := render(t, "baseline").objs
	prov, err := ConfigMapData(o, "grafana-provisioning")
	if err != nil {
		t.Fatal(err)
	}
	var ds struct {
		Datasources []struct {
			UID, Type, URL string
		} `json:"datasources"`
	}
	if err := yaml.Unmarshal([]byte(prov["datasources.yaml"]), &ds); err != nil || len(ds.Datasources) != 1 {
		t.Fatalf("datasources.yaml: %v, %d data sources", err, len(ds.Datasources))
	}
	d := ds.Datasources[0]
	u, _ := url.Parse(d.URL)
	if d.Type != "prometheus" || d.UID != "prometheus" {
		t.Errorf("data source %s uid %q, want prometheus uid \"prometheus\" (the dashboards refer to it)", d.Type, d.UID)
	}
	if err := checkDatabaseURLLike(o, u); err != nil {
		t.Errorf("data source URL %s: %v", d.URL, err)
	}
	var dp struct {
		Providers []struct {
			Options struct{ Path string } `json:"options"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal([]byte(prov["dashboards.yaml"]), &dp); err != nil || len(dp.Providers) != 1 {
		t.Fatalf("dashboards.yaml: %v", err)
	}
	g := findWorkload(o, "Deployment", "grafana")
	mounted := false
	for _, m := range g.Template.Spec.Containers[0].VolumeMounts {
		for _, v := range g.Template.Spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && strings.HasPrefix(v.ConfigMap.Name, "grafana-dashboards") && m.MountPath == dp.Providers[0].Options.Path {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("the dashboard provider reads %s, where the grafana-dashboards ConfigMap is not mounted", dp.Providers[0].Options.Path)
	}
	dash, err := ConfigMapData(o, "grafana-dashboards")
	if err != nil || len(dash) == 0 {
		t.Errorf("grafana-dashboards ConfigMap: %v, %d dashboards", err, len(dash))
	}
}

// checkDatabaseURLLike checks that http://HOST:PORT names a Service port.
func checkDatabaseURLLike(o *Objects, u *url.URL) error {
	v := *u
	v.Scheme = "postgres"
	return checkDatabaseURL(o, "carbuild", v.String())
}
