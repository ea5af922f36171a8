// Package sim proves the kustomize overlays in k8s/overlays against a real Kubernetes control
// plane (kube-apiserver, kube-controller-manager, kube-scheduler v1.33) whose nodes are simulated
// by kwok. run.sh builds and boots the cluster and runs these tests with K8S_SIM_KUBECONFIG set.
package sim

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

const (
	appNS        = "carbuild"
	fieldManager = "carbuild-sim"
)

// services are the application Deployments whose replica counts the overlays decide.
var services = []string{"catalog", "pricing", "gateway"}

// expectation is what an overlay is meant to produce (k8s/overlays/*/kustomization.yaml, issue 4).
type expectation struct {
	replicas            map[string]int    // ready replicas per Deployment
	oneReplicaPerWorker bool              // exactly one replica of each service on each worker
	hpa                 map[string][2]int // HPA (named after its target Deployment) -> min, max
}

func each(n int) map[string]int {
	m := map[string]int{}
	for _, s := range services {
		m[s] = n
	}
	return m
}

var expectations = map[string]expectation{
	"baseline":   {replicas: each(1)},
	"replicated": {replicas: each(3)},
	"spread":     {replicas: each(3), oneReplicaPerWorker: true},
	// No metrics API here, so the HPA controller holds each Deployment at minReplicas.
	"autoscale": {replicas: each(1), hpa: map[string][2]int{"catalog": {1, 6}, "pricing": {1, 6}, "gateway": {1, 6}}},
	"dev":       {replicas: each(1)},
	// TLS on every hop (certificates from dev/cmd/devcerts); not in overlayOrder:
	// its Secrets are generated from git-ignored files.
	"tls": {replicas: each(1)},
}

// overlayOrder lists every overlay; TestOverlays applies them in this order on one live cluster
// (from autoscale, with HPA-owned replicas, to dev, which sets them again). K8S_SIM_ORDER
// (space-separated overlay names) changes the sequence, e.g. to come back to earlier overlays.
var overlayOrder = []string{"baseline", "replicated", "spread", "autoscale", "dev"}

var (
	kc          *kube
	overlaysDir string
	ctlptlPath  string
	// applied is what the previous apply created (key -> object), to prune what the next overlay drops,
	// as Tilt deletes objects that leave its manifests.
	applied = map[string]object{}
)

func TestMain(m *testing.M) {
	cfg := os.Getenv("K8S_SIM_KUBECONFIG")
	if cfg == "" {
		fmt.Fprintln(os.Stderr, "K8S_SIM_KUBECONFIG is not set: these tests need the simulated cluster; run k8s/sim/run.sh")
		os.Exit(2)
	}
	kubectl := os.Getenv("KUBECTL")
	if kubectl == "" {
		var err error
		if kubectl, err = exec.LookPath("kubectl"); err != nil {
			fmt.Fprintln(os.Stderr, "kubectl not found")
			os.Exit(2)
		}
	}
	kc = &kube{kubeconfig: cfg, kubectl: kubectl}
	overlaysDir = envOr("K8S_SIM_OVERLAYS", "../overlays")
	ctlptlPath = envOr("K8S_SIM_CTLPTL", "../../ctlptl.yaml")
	os.Exit(m.Run())
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func timed(t testing.TB, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	t.Logf("%-40s %6.2fs", what, time.Since(start).Seconds())
}

// TestOverlaysExist: every overlay directory has an expectation here and vice versa.
func TestOverlaysExist(t *testing.T) {
	entries, err := os.ReadDir(overlaysDir)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() {
			found[e.Name()] = true
			if _, ok := expectations[e.Name()]; !ok {
				t.Errorf("overlay %s has no expectation in k8s/sim/sim_test.go: add what it is meant to produce", e.Name())
			}
		}
	}
	for _, name := range overlayOrder {
		if !found[name] {
			t.Errorf("overlay %s is missing from %s", name, overlaysDir)
		}
	}
}

// TestOverlays applies the overlays one after another on one live cluster, starting from an empty
// one, as `tilt up -- --overlay=NAME` (or `tilt args`) would: dry-run, apply, delete what the
// overlay dropped, wait until it converged, check it, print where every pod runs. An
// immutable-field error fails the step.
func TestOverlays(t *testing.T) {
	order := overlayOrder
	if v := os.Getenv("K8S_SIM_ORDER"); v != "" {
		order = strings.Fields(v)
	}
	checked := map[string]bool{}
	for i, name := range order {
		ok := t.Run(fmt.Sprintf("%d-%s", i+1, name), func(t *testing.T) {
			deploy(t, name, !checked[name])
		})
		checked[name] = true
		if !ok {
			return
		}
	}
}

// render runs kubectl kustomize on an overlay and decodes the result.
func render(t *testing.T, name string) []object {
	t.Helper()
	var out []byte
	timed(t, "render (kubectl kustomize)", func() {
		out = kc.must(t, nil, "kustomize", filepath.Join(overlaysDir, name))
	})
	objs, err := splitYAML(out)
	if err != nil {
		t.Fatalf("decode rendered %s: %v", name, err)
	}
	return objs
}

// applyArgs: server-side apply with strict field validation (unknown or duplicate fields fail).
func applyArgs(extra ...string) []string {
	return append([]string{"apply", "--server-side", "--force-conflicts", "--field-manager=" + fieldManager,
		"--validate=strict", "-f", "-"}, extra...)
}

// warnings returns the "Warning:" lines kubectl printed (PodSecurity, deprecations, ...).
func warnings(stderr []byte) []string {
	var w []string
	for _, l := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "Warning:") {
			w = append(w, strings.TrimSpace(l))
		}
	}
	return w
}

// deploy renders, server-side dry-runs, applies and prunes one overlay, then waits for it to
// converge and checks it.
func deploy(t *testing.T, name string, full bool) {
	apply, mode := applyArgs, "server-side"
	objs := render(t, name)
	// Tilt applies client-side by default, which stores each object in its last-applied
	// annotation; the API server refuses annotations over 256 KiB in total.
	for _, o := range objs {
		if len(o.raw) > 256*1024-4096 {
			t.Errorf("%s is %d bytes: too large for client-side apply's last-applied annotation (Tilt's default)", o.key(), len(o.raw))
		}
	}
	var namespaces, real []object
	var skipped []string
	for _, o := range objs {
		switch o.Kind {
		case "Namespace":
			namespaces = append(namespaces, o)
		case "APIService":
			// An aggregated API points the apiserver at a Service's pods; here those are fake IPs
			// off loopback, and discovery would fail. It is validated by the dry-run only.
			skipped = append(skipped, o.key())
			continue
		}
		real = append(real, o)
	}
	if len(skipped) > 0 {
		t.Logf("validated by server-side dry-run only (aggregated API, would dial a fake pod IP): %s", strings.Join(skipped, ", "))
	}

	// The namespaces first: dry-running namespaced objects needs their namespace to exist.
	if len(namespaces) > 0 {
		r := kc.run(toStream(namespaces), apply()...)
		if r.err != nil {
			t.Fatalf("apply namespaces: %v", r.err)
		}
	}
	timed(t, mode+" apply, server dry-run (strict)", func() {
		r := kc.run(toStream(objs), apply("--dry-run=server")...)
		if r.err != nil {
			t.Fatalf("server rejected overlay %s in dry-run:\n%v", name, r.err)
		}
		if w := warnings(r.stderr); len(w) > 0 {
			t.Errorf("server warnings for overlay %s:\n  %s", name, strings.Join(w, "\n  "))
		}
	})
	timed(t, mode+" apply", func() {
		r := kc.run(toStream(real), apply()...)
		if r.err != nil {
			t.Fatalf("apply overlay %s: %v", name, r.err)
		}
		if w := warnings(r.stderr); len(w) > 0 {
			t.Errorf("server warnings for overlay %s:\n  %s", name, strings.Join(w, "\n  "))
		}
	})
	prune(t, real)

	var snap *snapshot
	timed(t, "converge (rollouts, PVCs, Job, HPA, PDB)", func() {
		// Controllers get 90 s to converge; once converged, a check still failing after 10 s
		// (EndpointSlices, PDB and HPA status lag a little) is a real failure.
		var convergedAt time.Time
		snap = eventually(t, name, 90*time.Second, func(s *snapshot) []string {
			p := s.converged(real)
			if len(p) == 0 {
				if convergedAt.IsZero() {
					convergedAt = time.Now()
				}
				if p = s.checks(name, real); len(p) > 0 && time.Since(convergedAt) > 10*time.Second {
					sort.Strings(p)
					t.Fatalf("overlay %s converged, but:\n  %s", name, strings.Join(p, "\n  "))
				}
			}
			return p
		})
	})
	logPlacement(t, name, snap, real)
	if full {
		timed(t, "RBAC (SubjectAccessReviews)", func() { checkRBAC(t) })
		if name == "replicated" || name == "spread" {
			timed(t, "drain probe", func() { drainProbe(t, name, real, expectations[name].oneReplicaPerWorker) })
		}
	}
}

// prune deletes what the previous apply created and this overlay no longer has.
func prune(t *testing.T, objs []object) {
	t.Helper()
	now := map[string]object{}
	for _, o := range objs {
		now[o.key()] = o
	}
	var gone []object
	for _, k := range sortedKeys(applied) {
		if _, ok := now[k]; !ok {
			gone = append(gone, applied[k])
		}
	}
	applied = now
	if len(gone) == 0 {
		return
	}
	var names []string
	for _, o := range gone {
		names = append(names, o.key())
	}
	timed(t, fmt.Sprintf("prune %d objects", len(gone)), func() {
		r := kc.run(toStream(gone), "delete", "--ignore-not-found", "--wait=true", "--timeout=60s", "-f", "-")
		if r.err != nil {
			t.Fatalf("prune %s: %v", strings.Join(names, ", "), r.err)
		}
	})
	t.Logf("pruned: %s", strings.Join(names, ", "))
}

// eventually takes snapshots until check reports no problems, or fails with the last problems.
func eventually(t *testing.T, what string, timeout time.Duration, check func(*snapshot) []string) *snapshot {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s, err := takeSnapshot()
		var problems []string
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = check(s)
		}
		if len(problems) == 0 {
			return s
		}
		if time.Now().After(deadline) {
			sort.Strings(problems)
			t.Fatalf("%s: not converged after %s:\n  %s\nrecent warning events:\n%s", what, timeout,
				strings.Join(problems, "\n  "), warningEvents())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func warningEvents() string {
	r := kc.run(nil, "get", "events", "-A", "--field-selector", "type=Warning", "--sort-by=.lastTimestamp",
		"-o", "custom-columns=NS:.metadata.namespace,OBJECT:.involvedObject.name,REASON:.reason,MESSAGE:.message")
	if r.err != nil {
		return r.err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(r.stdout)), "\n")
	if len(lines) > 25 {
		lines = append(lines[:1], lines[len(lines)-24:]...)
	}
	return "  " + strings.Join(lines, "\n  ")
}

// logPlacement prints pod -> node for every pod of the overlay, grouped by workload.
func logPlacement(t *testing.T, overlay string, s *snapshot, objs []object) {
	workerID := map[string]string{}
	for _, n := range s.nodes {
		if id, ok := n.Metadata.Labels["worker-id"]; ok {
			workerID[n.Metadata.Name] = "worker-id=" + id
		} else if _, ok := n.Metadata.Labels["node-role.kubernetes.io/control-plane"]; ok {
			workerID[n.Metadata.Name] = "control-plane"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "placement, overlay %s:\n", overlay)
	perNode := map[string]int{}
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" && o.Kind != "Job" {
			continue
		}
		pods := s.podsOf(o.Kind, o.Metadata.Namespace, o.Metadata.Name)
		for _, p := range pods {
			fmt.Fprintf(&b, "  %-12s %-22s %-40s -> %s (%s) %s\n", o.Kind, o.Metadata.Namespace+"/"+o.Metadata.Name,
				p.Metadata.Name, p.Spec.NodeName, workerID[p.Spec.NodeName], p.Status.Phase)
			if p.Status.Phase == "Running" {
				perNode[p.Spec.NodeName]++
			}
		}
	}
	fmt.Fprintf(&b, "  running pods per node:")
	for _, n := range sortedKeys(perNode) {
		fmt.Fprintf(&b, " %s=%d", n, perNode[n])
	}
	t.Log(b.String())
}
