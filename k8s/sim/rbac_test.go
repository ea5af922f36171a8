package sim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

const prometheusSA = "system:serviceaccount:" + appNS + ":prometheus"

var saGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + appNS, "system:authenticated"}

type access struct {
	verb, group, resource, subresource, ns string
	want                                   bool
}

// Prometheus discovers its targets with kubernetes_sd role "pod" in namespace carbuild
// (k8s/base/prometheus/prometheus.yml): it needs list and watch on pods there, nothing more.
var prometheusAccess = []access{
	{"list", "", "pods", "", appNS, true},
	{"watch", "", "pods", "", appNS, true},
	{"get", "", "pods", "", appNS, true},
	{"list", "", "pods", "", "kube-system", false},
	{"list", "", "pods", "", "", false}, // cluster-wide
	{"create", "", "pods", "", appNS, false},
	{"delete", "", "pods", "", appNS, false},
	{"patch", "", "pods", "", appNS, false},
	{"create", "", "pods", "exec", appNS, false},
	{"get", "", "pods", "log", appNS, false},
	{"get", "", "secrets", "", appNS, false},
	{"list", "", "secrets", "", appNS, false},
	{"get", "", "configmaps", "", appNS, false},
	{"list", "", "nodes", "", "", false},
	{"get", "", "nodes", "proxy", "", false},
	{"patch", "apps", "deployments", "", appNS, false},
	{"create", "", "serviceaccounts", "token", appNS, false},
	{"create", "rbac.authorization.k8s.io", "rolebindings", "", appNS, false},
	{"escalate", "rbac.authorization.k8s.io", "roles", "", appNS, false},
	{"impersonate", "", "users", "", "", false},
}

// checkRBAC asks the real authorizer (SubjectAccessReviews, what `kubectl auth can-i --as` does)
// and lists every rule the account has (SelfSubjectRulesReview) to find grants beyond the need.
func checkRBAC(t *testing.T) {
	t.Helper()
	var b strings.Builder
	for _, a := range prometheusAccess {
		sar := map[string]any{
			"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
			"spec": map[string]any{"user": prometheusSA, "groups": saGroups, "resourceAttributes": map[string]string{
				"verb": a.verb, "group": a.group, "resource": a.resource, "subresource": a.subresource, "namespace": a.ns}},
		}
		j, _ := json.Marshal(sar)
		b.WriteString("---\n")
		b.Write(j)
		b.WriteString("\n")
	}
	out := kc.must(t, []byte(b.String()), "create", "-o", "json", "-f", "-")
	// kubectl create -o json prints one JSON document per created review.
	type review struct {
		Status struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"status"`
	}
	var list struct{ Items []review }
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var r review
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode SubjectAccessReviews: %v: %.300s", err, out)
		}
		list.Items = append(list.Items, r)
	}
	if len(list.Items) != len(prometheusAccess) {
		t.Fatalf("%d SubjectAccessReviews answered, want %d", len(list.Items), len(prometheusAccess))
	}
	var table strings.Builder
	for i, a := range prometheusAccess {
		got := list.Items[i].Status.Allowed
		res := a.resource
		if a.subresource != "" {
			res += "/" + a.subresource
		}
		if a.group != "" {
			res += "." + a.group
		}
		ns := a.ns
		if ns == "" {
			ns = "(cluster)"
		}
		fmt.Fprintf(&table, "  can-i %-11s %-40s -n %-12s %-3v %s\n", a.verb, res, ns, yesno(got), list.Items[i].Status.Reason)
		if got != a.want {
			t.Errorf("prometheus service account: can-i %s %s in %s = %v, want %v", a.verb, res, ns, yesno(got), yesno(a.want))
		}
	}
	t.Logf("RBAC for %s:\n%s", prometheusSA, table.String())

	// Every rule it holds in its namespace: only get/list/watch on pods, besides what every
	// authenticated user gets (self reviews, discovery URLs).
	args := []string{"create", "--validate=false", "-o", "json", "-f", "-", "--as=" + prometheusSA}
	for _, g := range saGroups {
		args = append(args, "--as-group="+g)
	}
	out = kc.must(t, []byte(`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"`+appNS+`"}}`), args...)
	var rr struct {
		Status struct {
			ResourceRules []struct {
				Verbs     []string `json:"verbs"`
				APIGroups []string `json:"apiGroups"`
				Resources []string `json:"resources"`
			} `json:"resourceRules"`
		} `json:"status"`
	}
	if err := json.Unmarshal(out, &rr); err != nil {
		t.Fatal(err)
	}
	for _, r := range rr.Status.ResourceRules {
		self := len(r.APIGroups) == 1 && r.APIGroups[0] == "authorization.k8s.io" || len(r.APIGroups) == 1 && r.APIGroups[0] == "authentication.k8s.io"
		if self && strings.Join(r.Verbs, ",") == "create" {
			continue
		}
		pods := len(r.APIGroups) == 1 && r.APIGroups[0] == "" && strings.Join(r.Resources, ",") == "pods"
		for _, v := range r.Verbs {
			if !pods || (v != "get" && v != "list" && v != "watch") {
				t.Errorf("prometheus service account holds a rule it does not need: verbs %v on %v in groups %q", r.Verbs, r.Resources, r.APIGroups)
				break
			}
		}
	}
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
