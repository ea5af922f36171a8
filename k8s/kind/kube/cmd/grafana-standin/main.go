// Command grafana-standin answers for grafana/grafana in the offline Kind test:
// Grafana is not packaged by Debian and no registry is reachable there, so the
// test tags this image grafana/grafana:<the manifest's tag>. It is not Grafana:
// it proves the pod's wiring instead — the provisioning files the manifest
// mounts exist and parse (YAML data source and dashboard providers, JSON
// dashboards), and it serves /api/health on :3000 only when they do.
package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("grafana-standin", "err", err)
		os.Exit(1)
	}
}

// check reports what is wrong with the mounted provisioning, or nil.
func check() error {
	for _, f := range []string{
		"/etc/grafana/provisioning/datasources/datasources.yaml",
		"/etc/grafana/provisioning/dashboards/dashboards.yaml",
	} {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "apiVersion:") {
			return fmt.Errorf("%s: no apiVersion", f)
		}
	}
	dash, err := filepath.Glob("/etc/grafana/dashboards/carbuild/*.json")
	if err != nil {
		return err
	}
	if len(dash) == 0 {
		return fmt.Errorf("no dashboards under /etc/grafana/dashboards/carbuild")
	}
	for _, f := range dash {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}

func run(log *slog.Logger) error {
	if err := check(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/health", func(w http.ResponseWriter, _ *http.Request) {
		if err := check(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintln(w, `{"database":"ok","version":"stand-in"}`)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "Grafana stand-in (offline test image): provisioning files present and parsed.")
	})
	srv := &http.Server{Addr: ":3000", Handler: mux, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	log.Info("grafana-standin listening", "addr", srv.Addr)
	return srv.ListenAndServe()
}
