package proof

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Flow is a TCP connection from one app's pods (by app.kubernetes.io/name) to
// another app's port. From "" is a client outside the cluster (NodePort).
type Flow struct {
	From, To string
	Port     int32
}

func (f Flow) String() string {
	from := f.From
	if from == "" {
		from = "outside"
	}
	return fmt.Sprintf("%s -> %s:%d", from, f.To, f.Port)
}

// RequiredFlows must be admitted by the NetworkPolicies.
var RequiredFlows = []Flow{
	{"gateway", "catalog", 50051},
	{"gateway", "pricing", 50052},
	{"pricing", "catalog", 50051},
	{"catalog", "postgres", 5432},
	{"pricing", "postgres", 5432},
	{"migrate", "postgres", 5432},
	{"prometheus", "catalog", 9091},
	{"prometheus", "pricing", 9092},
	{"prometheus", "gateway", 9093},
	{"locust-worker", "gateway", 8000},
	{"locust-master", "gateway", 8000},
	{"", "gateway", 8000},
	{"grafana", "prometheus", 9090},
	{"locust-worker", "locust-master", 5557},
}

// ForbiddenFlows must be refused.
var ForbiddenFlows = []Flow{
	{"locust-worker", "catalog", 50051},
	{"locust-worker", "pricing", 50052},
	{"locust-worker", "postgres", 5432},
	{"gateway", "postgres", 5432},
	{"", "catalog", 50051},
	{"", "pricing", 50052},
	{"", "postgres", 5432},
	{"", "prometheus", 9090},
	{"catalog", "pricing", 50052},
	{"grafana", "catalog", 9091},
	{"locust-worker", "prometheus", 9090},
	{"gateway", "catalog", 9091},
	// The gateway's metrics and pprof are private: only Prometheus.
	{"", "gateway", 9093},
	{"locust-worker", "gateway", 9093},
}

const appLabel = "app.kubernetes.io/name"

// podOf finds the pod template of an app in namespace carbuild.
func podOf(o *Objects, app string) *Workload {
	for _, w := range o.Workloads() {
		if w.Namespace == "carbuild" && w.Template.Labels[appLabel] == app {
			return &w
		}
	}
	return nil
}

// Admitted evaluates the NetworkPolicies of the objects for one flow, with the
// semantics of the API: a pod selected by no Ingress policy accepts all
// traffic; otherwise some rule of a policy selecting it must admit the source
// (podSelector peers are same-namespace pods) and the port (numbers, or names
// resolved against the destination's container ports).
func Admitted(o *Objects, f Flow) (bool, error) {
	dst := podOf(o, f.To)
	if dst == nil {
		return false, fmt.Errorf("%s: no pods of %s", f, f.To)
	}
	if !declaresPort(dst.Template, f.Port) {
		return false, fmt.Errorf("%s: %s declares no container port %d", f, f.To, f.Port)
	}
	var srcLabels map[string]string
	if f.From != "" {
		src := podOf(o, f.From)
		if src == nil {
			return false, fmt.Errorf("%s: no pods of %s", f, f.From)
		}
		srcLabels = src.Template.Labels
	}
	isolated := false
	for _, p := range o.Policies {
		if p.Namespace != dst.Namespace || !hasIngress(p) {
			continue
		}
		if ok, err := Matches(&p.Spec.PodSelector, dst.Template.Labels); err != nil {
			return false, err
		} else if !ok {
			continue
		}
		isolated = true
		for _, r := range p.Spec.Ingress {
			if peerAdmits(r.From, srcLabels, f.From == "") && portAdmits(r.Ports, dst.Template, f.Port) {
				return true, nil
			}
		}
	}
	return !isolated, nil
}

func hasIngress(p *networkingv1.NetworkPolicy) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return true // Ingress is implied
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == networkingv1.PolicyTypeIngress {
			return true
		}
	}
	return false
}

func peerAdmits(peers []networkingv1.NetworkPolicyPeer, src map[string]string, outside bool) bool {
	if len(peers) == 0 {
		return true
	}
	for _, peer := range peers {
		switch {
		case peer.IPBlock != nil:
			// Any CIDR may contain the source; only 0.0.0.0/0 is certain.
			if peer.IPBlock.CIDR == "0.0.0.0/0" && len(peer.IPBlock.Except) == 0 {
				return true
			}
		case outside:
			// Pod and namespace selectors never match traffic from outside the cluster.
		case peer.NamespaceSelector != nil:
			// Only an empty namespaceSelector (all namespaces) is decidable here.
			if len(peer.NamespaceSelector.MatchLabels) == 0 && len(peer.NamespaceSelector.MatchExpressions) == 0 {
				if peer.PodSelector == nil {
					return true
				}
				if ok, _ := Matches(peer.PodSelector, src); ok {
					return true
				}
			}
		case peer.PodSelector != nil:
			if ok, _ := Matches(peer.PodSelector, src); ok {
				return true
			}
		}
	}
	return false
}

func portAdmits(ports []networkingv1.NetworkPolicyPort, t *corev1.PodTemplateSpec, port int32) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != corev1.ProtocolTCP {
			continue
		}
		if p.Port == nil {
			return true
		}
		if p.Port.Type == intstr.Int {
			end := p.Port.IntVal
			if p.EndPort != nil {
				end = *p.EndPort
			}
			if port >= p.Port.IntVal && port <= end {
				return true
			}
			continue
		}
		if n, err := resolvePort(t, *p.Port, 0); err == nil && n == port {
			return true
		}
	}
	return false
}

func declaresPort(t *corev1.PodTemplateSpec, port int32) bool {
	for _, c := range t.Spec.Containers {
		for _, cp := range c.Ports {
			if cp.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

// CheckNetworkPolicies checks that every policy selects pods, every required
// flow is admitted and every forbidden flow refused.
func CheckNetworkPolicies(o *Objects) []error {
	var errs []error
	for _, p := range o.Policies {
		n := 0
		for _, w := range o.Workloads() {
			if ok, _ := Matches(&p.Spec.PodSelector, w.Template.Labels); ok && w.Namespace == p.Namespace {
				n++
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s/%s selects no pods", p.Namespace, p.Name))
		}
	}
	for _, f := range RequiredFlows {
		ok, err := Admitted(o, f)
		if err != nil {
			errs = append(errs, err)
		} else if !ok {
			errs = append(errs, fmt.Errorf("required flow %s is not admitted by any NetworkPolicy", f))
		}
	}
	for _, f := range ForbiddenFlows {
		ok, err := Admitted(o, f)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			errs = append(errs, fmt.Errorf("unwanted flow %s is admitted", f))
		}
	}
	return errs
}
