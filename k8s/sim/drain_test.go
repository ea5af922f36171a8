package sim

// The default scheduler already spreads replicas softly, so on idle, equal nodes `replicated`
// lands one pod per worker too. What `spread` adds is a hard constraint; this probe tells them
// apart the way a node drain would: cordon a worker, delete the catalog pod on it, and see
// where the replacement goes.

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// drainProbe: with hard spreading (wantPending) the replacement must stay Pending with the
// scheduler citing the topology spread constraint; without it, it must run on another worker.
// The worker is uncordoned afterwards and the overlay must converge again.
func drainProbe(t *testing.T, overlay string, objs []object, wantPending bool) {
	t.Helper()
	s, err := takeSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	workers := s.workers()
	victimNode := workers[len(workers)-1]
	var victim string
	for _, p := range s.podsOf("Deployment", appNS, "catalog") {
		if p.Spec.NodeName == victimNode {
			victim = p.Metadata.Name
		}
	}
	if victim == "" {
		t.Fatalf("drain probe: no catalog pod on %s", victimNode)
	}
	kc.must(t, nil, "cordon", victimNode)
	uncordoned := false
	uncordon := func() {
		if !uncordoned {
			kc.must(t, nil, "uncordon", victimNode)
			uncordoned = true
		}
	}
	defer uncordon()
	kc.must(t, nil, "delete", "pod", "-n", appNS, victim, "--wait=true")

	// Wait for the replacement: scheduled (3 pods on nodes) or unschedulable (one Pending
	// without a node, after the scheduler has had a go at it).
	var where string
	pending := false
	eventually(t, "drain probe", 30*time.Second, func(s *snapshot) []string {
		on := map[string]int{}
		n := 0
		for _, p := range s.podsOf("Deployment", appNS, "catalog") {
			if p.Metadata.Name == victim || p.Metadata.DeletionTimestamp != nil {
				continue
			}
			n++
			if p.Spec.NodeName == "" {
				for _, c := range p.Status.Conditions {
					if c.Type == "PodScheduled" && c.Status == "False" && c.Reason == "Unschedulable" {
						pending = true
					}
				}
			}
			on[p.Spec.NodeName]++
		}
		where = fmt.Sprintf("%v", on)
		if n == 3 && (pending || on[""] == 0) {
			return nil
		}
		return []string{"replacement catalog pod neither scheduled nor unschedulable yet: " + where}
	})
	if pending != wantPending {
		t.Fatalf("%s: with %s cordoned, the replacement catalog pod is %s (catalog pods per node %s); want %s",
			overlay, victimNode, map[bool]string{true: "unschedulable", false: "scheduled"}[pending], where,
			map[bool]string{true: "unschedulable: hard topology spread (one per worker) forbids doubling up", false: "scheduled on another worker"}[wantPending])
	}
	if wantPending {
		// It must stay Pending, for the right reason.
		time.Sleep(2 * time.Second)
		out := kc.must(t, nil, "get", "events", "-n", appNS, "--field-selector", "reason=FailedScheduling",
			"-o", "jsonpath={range .items[*]}{.involvedObject.name}: {.message}{\"\\n\"}{end}")
		var msg string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.HasPrefix(l, "catalog-") && strings.Contains(l, "topology spread") {
				msg = l
			}
		}
		if msg == "" {
			t.Errorf("%s: replacement catalog pod Pending, but no FailedScheduling event cites topology spread:\n%s", overlay, out)
		}
		s, _ := takeSnapshot()
		for _, p := range s.podsOf("Deployment", appNS, "catalog") {
			if p.Spec.NodeName == "" && p.Status.Phase != "Pending" {
				t.Errorf("%s: unscheduled pod %s is %s", overlay, p.Metadata.Name, p.Status.Phase)
			}
		}
		t.Logf("drain probe (%s cordoned, its catalog pod deleted): replacement stays Pending — %s", victimNode, msg)
	} else {
		t.Logf("drain probe (%s cordoned, its catalog pod deleted): replacement scheduled elsewhere, catalog pods per node %s", victimNode, where)
	}
	uncordon()
	eventually(t, overlay+" after uncordon", 60*time.Second, func(s *snapshot) []string {
		p := s.converged(objs)
		if len(p) == 0 && wantPending {
			p = s.checks(overlay, objs)
		}
		return p
	})
}
