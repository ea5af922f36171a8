package proof

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The checks must fail on broken input. Each case breaks one thing in the
// rendered baseline overlay (or the Tiltfile, ctlptl.yaml, Dockerfile) and
// expects a specific error.

// mutate re-renders the baseline documents with one object changed.
func mutate(t *testing.T, kind, name string, change func(obj map[string]any)) []Doc {
	t.Helper()
	src := render(t, "baseline").docs
	out := make([]Doc, 0, len(src))
	found := false
	for _, d := range src {
		if d.Kind == kind && d.Name == name {
			var obj map[string]any
			if err := yaml.Unmarshal(d.Raw, &obj); err != nil {
				t.Fatal(err)
			}
			change(obj)
			raw, err := yaml.Marshal(obj)
			if err != nil {
				t.Fatal(err)
			}
			d.Raw = raw
			found = true
		}
		out = append(out, d)
	}
	if !found {
		t.Fatalf("no %s %s in baseline", kind, name)
	}
	return out
}

// at walks a decoded YAML object: string keys and int indexes.
func at(obj any, path ...any) map[string]any {
	cur := obj
	for _, p := range path {
		switch k := p.(type) {
		case string:
			cur = cur.(map[string]any)[k]
		case int:
			cur = cur.([]any)[k]
		}
	}
	return cur.(map[string]any)
}

func container(obj map[string]any) map[string]any {
	return at(obj, "spec", "template", "spec", "containers", 0)
}

func setEnv(c map[string]any, name, value string) {
	env, _ := c["env"].([]any)
	for _, e := range env {
		if e.(map[string]any)["name"] == name {
			e.(map[string]any)["value"] = value
			return
		}
	}
	c["env"] = append(env, map[string]any{"name": name, "value": value})
}

func decodeOrFatal(t *testing.T, docs []Doc) *Objects {
	t.Helper()
	o, errs := Decode(docs)
	if len(errs) > 0 {
		t.Fatalf("decode: %v", errs)
	}
	return o
}

func wantError(t *testing.T, errs []error, substr string) {
	t.Helper()
	for _, err := range errs {
		if strings.Contains(err.Error(), substr) {
			return
		}
	}
	t.Errorf("want an error containing %q, got %v", substr, errors.Join(errs...))
}

func TestBrokenManifestsFail(t *testing.T) {
	bins := binaries(t)
	all := func(o *Objects) []error {
		var errs []error
		for _, f := range []func(*Objects) []error{CheckSelectors, CheckNamespace, CheckNetworkPolicies, CheckReferences, CheckImages, CheckPodSecurity, CheckDatabaseRoles,
			func(o *Objects) []error { return CheckPods(o, nil) },
			func(o *Objects) []error { return CheckBinaries(o, bins) },
			func(o *Objects) []error { return CheckOverlay("baseline", o) }} {
			errs = append(errs, f(o)...)
		}
		return errs
	}
	// The unbroken baseline passes, so each failure below is the change's.
	if errs := all(decodeOrFatal(t, render(t, "baseline").docs)); len(errs) > 0 {
		t.Fatalf("baseline: %v", errs)
	}
	cases := []struct {
		name         string
		kind, object string
		change       func(map[string]any)
		want         string
	}{
		{"mismatched selector", "Deployment", "gateway", func(o map[string]any) {
			at(o, "spec", "template", "metadata", "labels")["app.kubernetes.io/name"] = "gateway-v2"
		}, "does not match its pod template labels"},
		{"missing limits", "Deployment", "catalog", func(o map[string]any) {
			delete(at(container(o), "resources"), "limits")
		}, "cpu request and limit are both required"},
		{"root user", "Deployment", "pricing", func(o map[string]any) {
			at(o, "spec", "template", "spec", "securityContext")["runAsUser"] = 0
		}, "non-zero uid"},
		{"privilege escalation", "StatefulSet", "postgres", func(o map[string]any) {
			at(container(o), "securityContext")["allowPrivilegeEscalation"] = true
		}, "allowPrivilegeEscalation is not false"},
		{"writable root outside dev", "Deployment", "gateway", func(o map[string]any) {
			at(container(o), "securityContext")["readOnlyRootFilesystem"] = false
		}, "readOnlyRootFilesystem is false, want true"},
		{"no readiness probe", "Deployment", "grafana", func(o map[string]any) {
			delete(container(o), "readinessProbe")
		}, "no readiness probe"},
		{"probe on an undeclared port", "Deployment", "prometheus", func(o map[string]any) {
			at(container(o), "livenessProbe", "httpGet")["port"] = "metrics"
		}, "no container port metrics"},
		{"env the binary does not read", "Deployment", "catalog", func(o map[string]any) {
			setEnv(container(o), "CATALOG_GRPC_PORT", "50051")
		}, "env CATALOG_GRPC_PORT is not read by the binary"},
		{"listen on loopback", "Deployment", "catalog", func(o map[string]any) {
			setEnv(container(o), "CATALOG_GRPC_ADDR", "127.0.0.1:50051")
		}, `want ":PORT" (all interfaces)`},
		{"listen address not set", "Deployment", "gateway", func(o map[string]any) {
			c := container(o)
			var keep []any
			for _, e := range c["env"].([]any) {
				if e.(map[string]any)["name"] != "GATEWAY_HTTP_ADDR" {
					keep = append(keep, e)
				}
			}
			c["env"] = keep
		}, "GATEWAY_HTTP_ADDR is not set"},
		{"container port the binary does not serve", "Deployment", "pricing", func(o map[string]any) {
			at(container(o), "ports", 1)["containerPort"] = 9099
		}, "container port 9099 (metrics) is not a port the binary listens on"},
		{"liveness on the readiness service", "Deployment", "catalog", func(o map[string]any) {
			delete(at(container(o), "livenessProbe", "grpc"), "service")
		}, `service "", want port 50051 service "liveness"`},
		{"round_robin target behind a cluster IP", "Deployment", "gateway", func(o map[string]any) {
			setEnv(container(o), "PRICING_ADDR", "dns:///pricing:50052")
		}, "needs a headless Service"},
		{"backend on the metrics port", "Deployment", "gateway", func(o map[string]any) {
			setEnv(container(o), "CATALOG_ADDR", "catalog:9091")
		}, "but catalog serves gRPC on 50051"},
		{"unknown flag", "Job", "migrate", func(o map[string]any) {
			container(o)["args"] = []any{"-wiat=2m"}
		}, "the binary has no flag -wiat"},
		{"shutdown delay shorter than the readiness probe takes", "Deployment", "gateway", func(o map[string]any) {
			setEnv(container(o), "SHUTDOWN_DELAY", "5s")
		}, "SHUTDOWN_DELAY 5s is shorter than the readiness probe needs"},
		{"readiness probe slower than the shutdown delay", "Deployment", "pricing", func(o map[string]any) {
			at(container(o), "readinessProbe")["periodSeconds"] = 10
		}, "SHUTDOWN_DELAY 13s is shorter than the readiness probe needs"},
		{"grace period shorter than the drain", "Deployment", "catalog", func(o map[string]any) {
			at(o, "spec", "template", "spec")["terminationGracePeriodSeconds"] = 10
		}, "does not outlast SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT"},
		{"missing secret key", "Deployment", "pricing", func(o map[string]any) {
			for _, e := range container(o)["env"].([]any) {
				if e.(map[string]any)["name"] == "DATABASE_URL" {
					at(e, "valueFrom", "secretKeyRef")["key"] = "DB_URL"
				}
			}
		}, "has no key DB_URL"},
		{"catalog as the owner", "Deployment", "catalog", func(o map[string]any) {
			for _, e := range container(o)["env"].([]any) {
				if e.(map[string]any)["name"] == "DATABASE_URL" {
					at(e, "valueFrom", "secretKeyRef")["name"] = "postgres-credentials"
				}
			}
		}, "holds the owner's credentials"},
		{"pricing as the owner, literal URL", "Deployment", "pricing", func(o map[string]any) {
			for _, e := range container(o)["env"].([]any) {
				if e.(map[string]any)["name"] == "DATABASE_URL" {
					delete(e.(map[string]any), "valueFrom")
				}
			}
			setEnv(container(o), "DATABASE_URL", "postgres://carbuild:carbuild-dev-password@postgres:5432/carbuild?sslmode=disable")
		}, "DATABASE_URL is not read from a Secret"},
		{"migrate only migrates", "Job", "migrate", func(o map[string]any) {
			container(o)["args"] = []any{"-wait=2m", "up"}
		}, "do not ensure the login roles"},
		{"migrate without pricing's password", "Job", "migrate", func(o map[string]any) {
			c := container(o)
			c["env"] = slices.DeleteFunc(c["env"].([]any), func(e any) bool { return e.(map[string]any)["name"] == "PRICING_DB_PASSWORD" })
		}, "the Job does not ensure pricing's role"},
		{"migrate sets another password", "Job", "migrate", func(o map[string]any) {
			c := container(o)
			c["env"] = slices.DeleteFunc(c["env"].([]any), func(e any) bool { return e.(map[string]any)["name"] == "CATALOG_DB_PASSWORD" })
			setEnv(c, "CATALOG_DB_PASSWORD", "rotated")
		}, "differs from the one the migrate Job sets (CATALOG_DB_PASSWORD)"},
		{"migrate ensures another role", "Job", "migrate", func(o map[string]any) {
			c := container(o)
			c["env"] = slices.DeleteFunc(c["env"].([]any), func(e any) bool { return e.(map[string]any)["name"] == "CATALOG_DB_ROLE" })
			setEnv(c, "CATALOG_DB_ROLE", "catalog_v2")
		}, `but the migrate Job ensures role "catalog_v2"`},
		{"missing ConfigMap", "Deployment", "locust-worker", func(o map[string]any) {
			at(o, "spec", "template", "spec", "volumes", 0, "configMap")["name"] = "locustfile-old"
		}, "ConfigMap locustfile-old, which the overlay does not have"},
		{"policy admits everyone to catalog", "NetworkPolicy", "catalog-ingress", func(o map[string]any) {
			at(o, "spec")["ingress"] = []any{map[string]any{}}
		}, "unwanted flow locust-worker -> catalog:50051 is admitted"},
		{"postgres closed to the services", "NetworkPolicy", "postgres-ingress", func(o map[string]any) {
			at(o, "spec", "ingress", 0)["from"] = []any{map[string]any{"podSelector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": "migrate"}}}}
		}, "required flow catalog -> postgres:5432 is not admitted"},
		{"policy selecting no pods", "NetworkPolicy", "prometheus-ingress", func(o map[string]any) {
			at(o, "spec", "podSelector", "matchLabels")["app.kubernetes.io/name"] = "prometheus-server"
		}, "selects no pods"},
		{"service selecting no pods", "Service", "pricing", func(o map[string]any) {
			at(o, "spec", "selector")["app.kubernetes.io/name"] = "pricing-api"
		}, "selects no pods"},
		{"namespace not restricted", "Namespace", "carbuild", func(o map[string]any) {
			at(o, "metadata", "labels")["pod-security.kubernetes.io/enforce"] = "baseline"
		}, "does not enforce the restricted"},
		{"host port (Pod Security)", "Deployment", "gateway", func(o map[string]any) {
			at(container(o), "ports", 0)["hostPort"] = 8000
		}, `Pod Security "restricted" would reject its pods: hostPort`},
		{"seccomp unconfined (Pod Security)", "Deployment", "locust-master", func(o map[string]any) {
			at(o, "spec", "template", "spec", "securityContext", "seccompProfile")["type"] = "Unconfined"
		}, `seccompProfile`},
		{"unpinned image", "Deployment", "grafana", func(o map[string]any) {
			container(o)["image"] = "grafana/grafana:latest"
		}, "grafana/grafana:latest is not pinned"},
		{"image nobody builds", "Deployment", "gateway", func(o map[string]any) {
			container(o)["image"] = "carbuild/frontend"
		}, "carbuild/frontend is not one of the built services"},
		{"wrong replicas for the overlay", "Deployment", "catalog", func(o map[string]any) {
			at(o, "spec")["replicas"] = 2
		}, "catalog replicas"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := decodeOrFatal(t, mutate(t, c.kind, c.object, c.change))
			wantError(t, all(o), c.want)
		})
	}
}

func TestStrictDecodeRejectsBrokenYAML(t *testing.T) {
	for _, c := range []struct{ name, from, to, want string }{
		{"misspelled field", "readinessProbe:", "readinesProbe:", `unknown field "readinesProbe"`},
		{"misspelled nested field", "containerPort: 50051", "containerPrt: 50051", "unknown field"},
		{"wrong type", "replicas: 1", "replicas: one", "cannot unmarshal"},
		{"unknown kind", "kind: Deployment", "kind: Deploymnt", "no API type known"},
	} {
		t.Run(c.name, func(t *testing.T) {
			docs := render(t, "baseline").docs
			broken := make([]Doc, len(docs))
			copy(broken, docs)
			changed := false
			for i, d := range broken {
				if d.Kind == "Deployment" && d.Name == "catalog" && strings.Contains(string(d.Raw), c.from) {
					broken[i].Raw = []byte(strings.Replace(string(d.Raw), c.from, c.to, 1))
					if c.from == "kind: Deployment" {
						broken[i].Kind = "Deploymnt"
					}
					changed = true
				}
			}
			if !changed {
				t.Fatalf("%q not found in Deployment catalog", c.from)
			}
			_, errs := Decode(broken)
			wantError(t, errs, c.want)
		})
	}
}

func TestBrokenTiltfileFails(t *testing.T) {
	src := string(mustRead(t, "Tiltfile"))
	hostPorts := ctlptl(t).HostPorts()
	for _, c := range []struct{ name, from, to, want string }{
		{"missing Dockerfile", `"k8s/image/Dockerfile.tilt"`, `"k8s/image/Dockerfile.tlit"`, `dockerfile "k8s/image/Dockerfile.tlit" does not exist`},
		{"hard-coded GOARCH", "goarch = target_arch()", `goarch = "amd64"`, "lacks GOARCH=" + StubArch},
		{"workload without resource", `k8s_resource("postgres", labels = ["data"])`, "", "workload postgres of overlay dev has no k8s_resource"},
		{"unknown dependency", `resource_deps = ["postgres", "migrate-compile"]`, `resource_deps = ["postgresql", "migrate-compile"]`, `unknown resource "postgresql"`},
		{"misspelled keyword", "resource_deps = deps,", "resource_dep = deps,", `unexpected keyword argument "resource_dep"`},
		{"port-forward on the gateway's host port", `port_forward(3000, 3000, name = "Grafana")`, `port_forward(8000, 3000, name = "Grafana")`, "local port 8000 is already taken"},
		{"wrong binary path", `sync("build/" + name, "/app/server")`, `sync("build/" + name, "/app/catalog")`, `sync to "/app/catalog"`},
		{"missing overlay", `"k8s/overlays/" + overlay`, `"k8s/overlay/" + overlay`, "no kustomization.yaml there"},
		{"button that runs at start", "auto_init = False,", "auto_init = True,", "want auto_init=False"},
		{"missing make target", `"make test-k8s"`, `"make test-k8z"`, `make target "test-k8z" is not in the Makefile`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(src, c.from) {
				t.Fatalf("%q not in the Tiltfile", c.from)
			}
			run, err := EvalTiltfile([]byte(strings.Replace(src, c.from, c.to, 1)), map[string]string{"overlay": "dev"})
			var errs []error
			if err != nil {
				errs = []error{err}
			} else {
				errs = CheckTiltRun(run, TiltContext{Root: RepoRoot(), Overlay: "dev", Objects: render(t, "dev").objs, HostPorts: hostPorts})
			}
			wantError(t, errs, c.want)
		})
	}
}

func TestCompileDepsMissingShared(t *testing.T) {
	src := strings.Replace(string(mustRead(t, "Tiltfile")), `"deps": ["gateway", "catalog/catalogclient", "shared"]`, `"deps": ["gateway", "catalog/catalogclient"]`, 1)
	run, err := EvalTiltfile([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, CheckCompileDeps(run, RepoRoot()), `local_resource "gateway-compile": builds from shared/`)
}

func TestBrokenCtlptlFails(t *testing.T) {
	src := string(mustRead(t, "ctlptl.yaml"))
	for _, c := range []struct{ name, from, to, want string }{
		{"misspelled Kind field", "extraPortMappings:", "extraPortMapings:", "unknown field"},
		{"misspelled ctlptl field", "registry: ctlptl-registry", "regsitry: ctlptl-registry", "unknown field"},
		{"two workers", "    - role: worker\n      labels:\n        worker-id: \"3\"\n", "", "1 control planes and 2 workers"},
		{"duplicate worker id", `worker-id: "3"`, `worker-id: "2"`, "worker-id labels [1 2 2]"},
		{"gateway port not mapped", "hostPort: 8000", "hostPort: 8080", "no extraPortMapping of NodePort 30080"},
		{"other registry", "registry: ctlptl-registry", "registry: my-registry", `registry "my-registry"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(src, c.from) {
				t.Fatalf("%q not in ctlptl.yaml", c.from)
			}
			cfg, err := DecodeCtlptl([]byte(strings.Replace(src, c.from, c.to, 1)))
			var errs []error
			if err != nil {
				errs = []error{err}
			} else {
				errs = CheckCtlptl(cfg)
			}
			wantError(t, errs, c.want)
		})
	}
}

func TestBrokenDockerfileFails(t *testing.T) {
	src := string(mustRead(t, "Dockerfile"))
	goWork := string(mustRead(t, "go.work"))
	for _, c := range []struct{ name, from, to, want string }{
		{"root prod image", "USER 65532:65532\nENTRYPOINT [\"/app/server\"]", "ENTRYPOINT [\"/app/server\"]", "stage prod: want USER 65532"},
		{"cgo on", "CGO_ENABLED=0", "CGO_ENABLED=1", "missing CGO_ENABLED=0"},
		{"hard-coded arch", `GOARCH="${TARGETARCH:-$(go env GOARCH)}"`, "GOARCH=amd64", "missing GOARCH"},
		{"no cache mount", "--mount=type=cache,target=/root/.cache/go-build", "", "missing --mount=type=cache,target=/root/.cache/go-build"},
		{"full base image", "gcr.io/distroless/static-debian12:nonroot", "debian:12", "want gcr.io/distroless/static-debian12:nonroot"},
		{"module not copied", "COPY pricing/ pricing/\n", "", "pricing needs COPY pricing/"},
		{"workspace not pruned", "RUN go work use -r .\n", "", "want RUN go work use -r ."},
		{"unknown instruction", "WORKDIR /src", "WORKDIRR /src", "unknown instruction WORKDIRR"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(src, c.from) {
				t.Fatalf("%q not in the Dockerfile", c.from)
			}
			df, err := ParseDockerfile(strings.NewReader(strings.Replace(src, c.from, c.to, 1)))
			var errs []error
			if err != nil {
				errs = []error{err}
			} else {
				errs = CheckDockerfile(df, goWork)
			}
			wantError(t, errs, c.want)
		})
	}
}

func TestBrokenScrapeConfigFails(t *testing.T) {
	o := render(t, "baseline").objs
	data, err := ConfigMapData(o, "prometheus-config")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, from, to, want string }{
		{"every port scraped", "regex: metrics\n", "regex: .*\n", "2 scrape targets per pod, want exactly 1"},
		{"no opt-in", `regex: "true"`, `regex: "yes"`, "0 scrape targets per pod"},
		{"job label not the app", "target_label: job", "target_label: app", `job="carbuild-pods"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			src := data["prometheus.yml"]
			if !strings.Contains(src, c.from) {
				t.Fatalf("%q not in prometheus.yml", c.from)
			}
			cfg, err := ParsePromConfig(strings.Replace(src, c.from, c.to, 1))
			if err != nil {
				t.Fatal(err)
			}
			wantError(t, CheckScrape(cfg, o), c.want)
		})
	}
}
