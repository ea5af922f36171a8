package proof

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Services are the three Go services every overlay scales.
var Services = []string{"catalog", "pricing", "gateway"}

// WantReplicas is each overlay's replica count for the services; 0 means the
// Deployment leaves replicas to a HorizontalPodAutoscaler.
var WantReplicas = map[string]int32{"baseline": 1, "replicated": 3, "spread": 3, "autoscale": 0, "dev": 1, "tls": 1}

// CheckOverlay checks what makes each overlay the experiment it stands for.
func CheckOverlay(name string, o *Objects) []error {
	var errs []error
	want, known := WantReplicas[name]
	if !known {
		return []error{fmt.Errorf("overlay %s: unknown", name)}
	}
	for _, svc := range Services {
		w := findWorkload(o, "Deployment", svc)
		if w == nil {
			errs = append(errs, fmt.Errorf("overlay %s: no Deployment %s", name, svc))
			continue
		}
		switch {
		case want == 0 && w.Replicas != nil:
			errs = append(errs, fmt.Errorf("overlay %s: %s sets replicas %d, which would fight its autoscaler", name, svc, *w.Replicas))
		case want != 0 && (w.Replicas == nil || *w.Replicas != want):
			errs = append(errs, fmt.Errorf("overlay %s: %s replicas %v, want %d", name, svc, w.Replicas, want))
		}
		spec := w.Template.Spec
		if name == "spread" {
			errs = append(errs, checkSpread(w)...)
		} else if len(spec.TopologySpreadConstraints) > 0 {
			errs = append(errs, fmt.Errorf("overlay %s: %s has topology spread constraints; only spread should", name, svc))
		}
		if name == "autoscale" {
			errs = append(errs, checkHPA(o, svc)...)
		}
	}
	if name == "autoscale" {
		errs = append(errs, checkMetricsServer(o)...)
	} else if len(o.HPAs) > 0 {
		errs = append(errs, fmt.Errorf("overlay %s: has HorizontalPodAutoscalers; only autoscale should", name))
	}
	return errs
}

func findWorkload(o *Objects, kind, name string) *Workload {
	for _, w := range o.Workloads() {
		if w.Kind == kind && w.Name == name {
			return &w
		}
	}
	return nil
}

func checkSpread(w *Workload) []error {
	var errs []error
	spec := w.Template.Spec
	ok := false
	for _, c := range spec.TopologySpreadConstraints {
		sel, _ := Matches(c.LabelSelector, w.Template.Labels)
		if c.TopologyKey == "kubernetes.io/hostname" && c.MaxSkew == 1 &&
			c.WhenUnsatisfiable == corev1.DoNotSchedule && sel {
			ok = true
		}
	}
	if !ok {
		errs = append(errs, fmt.Errorf("spread: %s needs a hostname topology spread constraint (maxSkew 1, DoNotSchedule) selecting its own pods", w))
	}
	excl := false
	if a := spec.Affinity; a != nil && a.NodeAffinity != nil && a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil {
		terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
		excl = len(terms) > 0
		for _, t := range terms {
			if !slices.ContainsFunc(t.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool {
				return r.Key == "node-role.kubernetes.io/control-plane" && r.Operator == corev1.NodeSelectorOpDoesNotExist
			}) {
				excl = false
			}
		}
	}
	if !excl {
		errs = append(errs, fmt.Errorf("spread: %s must exclude the control-plane node by required node affinity", w))
	}
	return errs
}

func checkHPA(o *Objects, svc string) []error {
	for _, h := range o.HPAs {
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != svc {
			continue
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 1 || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
			return []error{fmt.Errorf("autoscale: HPA %s: want 1 <= minReplicas < maxReplicas", h.Name)}
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource != nil && m.Resource.Name == corev1.ResourceCPU && m.Resource.Target.AverageUtilization != nil {
				return nil
			}
		}
		return []error{fmt.Errorf("autoscale: HPA %s does not scale on CPU utilization", h.Name)}
	}
	return []error{fmt.Errorf("autoscale: no HorizontalPodAutoscaler for %s", svc)}
}

func checkMetricsServer(o *Objects) []error {
	w := findWorkload(o, "Deployment", "metrics-server")
	if w == nil || w.Namespace != "kube-system" {
		return []error{fmt.Errorf("autoscale: no metrics-server Deployment in kube-system")}
	}
	if !slices.Contains(w.Template.Spec.Containers[0].Args, "--kubelet-insecure-tls") {
		return []error{fmt.Errorf("autoscale: metrics-server needs --kubelet-insecure-tls on Kind")}
	}
	for _, s := range o.Services {
		if s.Namespace == "kube-system" && s.Name == "metrics-server" {
			return nil
		}
	}
	return []error{fmt.Errorf("autoscale: no metrics-server Service for the APIService")}
}
