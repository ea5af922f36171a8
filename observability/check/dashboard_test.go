package check

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestOfflineDashboardDatasource checks that every panel and target of every
// dashboard reads its data through the ${datasource} variable, whose default
// is the provisioned Prometheus (uid "prometheus"), and that panel ids are
// unique (Grafana links and edits panels by id).
func TestOfflineDashboardDatasource(t *testing.T) {
	files, _ := filepath.Glob(dashboardGlob)
	if len(files) == 0 {
		t.Fatalf("no dashboards match %s", dashboardGlob)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			UID           string `json:"uid"`
			SchemaVersion int    `json:"schemaVersion"`
			Panels        []panel
			Templating    struct {
				List []struct {
					Name    string `json:"name"`
					Type    string `json:"type"`
					Query   any    `json:"query"`
					Current struct {
						Value any `json:"value"`
					} `json:"current"`
				} `json:"list"`
			} `json:"templating"`
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" || d.SchemaVersion < 36 {
			t.Errorf("%s: uid %q, schemaVersion %d; want a uid and schemaVersion >= 36", f, d.UID, d.SchemaVersion)
		}
		found := false
		for _, v := range d.Templating.List {
			if v.Name == "datasource" {
				found = true
				if v.Type != "datasource" || v.Query != "prometheus" || v.Current.Value != "prometheus" {
					t.Errorf("%s: variable datasource = type %q query %v default %v; want a prometheus datasource variable defaulting to uid prometheus",
						f, v.Type, v.Query, v.Current.Value)
				}
			}
		}
		if !found {
			t.Errorf("%s: no datasource variable", f)
		}
		ids := map[int]string{}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				if prev, dup := ids[p.ID]; dup {
					t.Errorf("%s: panels %q and %q share id %d", f, prev, p.Title, p.ID)
				}
				ids[p.ID] = p.Title
				if p.Type != "row" && (p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus") {
					t.Errorf("%s: panel %q datasource = %+v, want prometheus ${datasource}", f, p.Title, p.Datasource)
				}
				for _, tg := range p.Targets {
					if tg.Datasource.UID != "${datasource}" {
						t.Errorf("%s: panel %q target %s datasource = %+v, want ${datasource}", f, p.Title, tg.RefID, tg.Datasource)
					}
				}
				if p.Type != "row" && len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", f, p.Title)
				}
				walk(p.Panels)
			}
		}
		walk(d.Panels)
	}
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource dsRef  `json:"datasource"`
	Targets    []struct {
		RefID      string `json:"refId"`
		Datasource dsRef  `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}
