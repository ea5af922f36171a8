package sim

// The harness must bite: deliberately broken manifests are rejected by the server, an immutable
// change is refused on re-apply, and the scheduler leaves a pod Pending that has nowhere to go.

import (
	"os"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/negative/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServerRejectsBrokenManifests(t *testing.T) {
	kc.must(t, readTestdata(t, "namespace.yaml"), applyArgs()...)
	t.Cleanup(func() { kc.run(nil, "delete", "namespace", "sim-negative", "--wait=false") })

	// Server-side apply (what the overlay tests use) and client-side apply word errors differently.
	ssa, csa := applyArgs("--dry-run=server"), []string{"apply", "--validate=strict", "--dry-run=server", "-f", "-"}
	for _, c := range []struct {
		file          string
		wantSSA, want []string // substrings of the server's error, per apply mode
	}{
		{"typo.yaml",
			[]string{".spec.replica: field not declared in schema"},
			[]string{`unknown field "spec.replica"`, `unknown field "spec.template.spec.containers[0].resource"`}},
		{"selector-mismatch.yaml", nil, []string{"`selector` does not match template `labels`"}},
		{"root-pod.yaml", nil, []string{`violates PodSecurity "restricted:latest"`, "runAsNonRoot != true"}},
	} {
		t.Run(c.file, func(t *testing.T) {
			for _, mode := range []struct {
				args []string
				want []string
			}{{ssa, c.wantSSA}, {csa, c.want}} {
				want := mode.want
				if want == nil {
					want = c.want
				}
				r := kc.run(readTestdata(t, c.file), mode.args...)
				if r.err == nil {
					t.Fatalf("%s: server accepted a broken manifest (kubectl %s)", c.file, strings.Join(mode.args, " "))
				}
				for _, w := range want {
					if !strings.Contains(r.err.Error(), w) {
						t.Errorf("%s: error does not mention %q:\n%v", c.file, w, r.err)
					}
				}
				t.Logf("%s rejected: %s", c.file, lastLine(r.err.Error()))
			}
		})
	}

	t.Run("immutable-job-template", func(t *testing.T) {
		job := readTestdata(t, "job.yaml")
		kc.must(t, job, applyArgs()...)
		changed := []byte(strings.Replace(string(job), `revision: "1"`, `revision: "2"`, 1))
		r := kc.run(changed, applyArgs()...)
		if r.err == nil {
			t.Fatal("changing a Job's pod template on a live cluster was accepted")
		}
		if !strings.Contains(r.err.Error(), "field is immutable") {
			t.Errorf("unexpected error: %v", r.err)
		}
	})

	t.Run("unschedulable-replica-stays-pending", func(t *testing.T) {
		kc.must(t, readTestdata(t, "unschedulable.yaml"), applyArgs()...)
		eventually(t, "four-on-three", 30*time.Second, func(s *snapshot) []string {
			running, pending := 0, 0
			for _, p := range s.pods {
				if p.Metadata.Namespace != "sim-negative" || p.Metadata.Labels["app"] != "four-on-three" {
					continue
				}
				if _, cp := s.nodeRole(p.Spec.NodeName); cp {
					return []string{"pod " + p.Metadata.Name + " on the control-plane node"}
				}
				switch p.Status.Phase {
				case "Running":
					running++
				case "Pending":
					if p.Spec.NodeName == "" {
						pending++
					}
				}
			}
			if running != 3 || pending != 1 {
				return []string{"want 3 Running on the 3 workers and 1 Pending unscheduled"}
			}
			return nil
		})
		var msg string
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			out := kc.must(t, nil, "get", "events", "-n", "sim-negative", "--field-selector", "reason=FailedScheduling",
				"-o", "jsonpath={.items[*].message}")
			if msg = string(out); msg != "" {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		for _, w := range []string{"untolerated taint", "node-role.kubernetes.io/control-plane", "anti-affinity"} {
			if !strings.Contains(msg, w) {
				t.Errorf("FailedScheduling event does not mention %q: %q", w, msg)
			}
		}
		t.Logf("scheduler: %s", msg)
	})
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
