package proof

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// CheckSelectors checks that every workload's selector selects its own pod
// template, that every Service, PodDisruptionBudget and HorizontalPodAutoscaler
// points at pods or a workload that exists, and that Service target ports name
// real container ports.
func CheckSelectors(o *Objects) []error {
	var errs []error
	ws := o.Workloads()
	for _, w := range ws {
		if w.Kind == "Job" {
			if w.Selector != nil {
				errs = append(errs, fmt.Errorf("%s: set no selector on a Job; the API server generates it", w))
			}
			continue
		}
		ok, err := Matches(w.Selector, w.Template.Labels)
		if err != nil || !ok {
			errs = append(errs, fmt.Errorf("%s: selector %v does not match its pod template labels %v (%v)", w, w.Selector, w.Template.Labels, err))
		}
	}
	for _, s := range o.Services {
		if len(s.Spec.Selector) == 0 {
			errs = append(errs, fmt.Errorf("Service %s/%s: no selector", s.Namespace, s.Name))
			continue
		}
		var selected []Workload
		for _, w := range ws {
			if w.Namespace == s.Namespace && labelsMatch(s.Spec.Selector, w.Template.Labels) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			errs = append(errs, fmt.Errorf("Service %s/%s: selector %v selects no pods", s.Namespace, s.Name, s.Spec.Selector))
		}
		for _, p := range s.Spec.Ports {
			for _, w := range selected {
				if _, err := resolvePort(w.Template, p.TargetPort, p.Port); err != nil {
					errs = append(errs, fmt.Errorf("Service %s/%s port %q: %s: %w", s.Namespace, s.Name, p.Name, w, err))
				}
			}
		}
	}
	for _, p := range o.PDBs {
		n := 0
		for _, w := range ws {
			if ok, _ := Matches(p.Spec.Selector, w.Template.Labels); ok && w.Namespace == p.Namespace {
				n++
			}
		}
		if n == 0 {
			errs = append(errs, fmt.Errorf("PodDisruptionBudget %s/%s selects no pods", p.Namespace, p.Name))
		}
	}
	for _, h := range o.HPAs {
		ref := h.Spec.ScaleTargetRef
		if !slices.ContainsFunc(ws, func(w Workload) bool {
			return w.Kind == ref.Kind && w.Name == ref.Name && w.Namespace == h.Namespace
		}) {
			errs = append(errs, fmt.Errorf("HorizontalPodAutoscaler %s/%s: target %s %s does not exist", h.Namespace, h.Name, ref.Kind, ref.Name))
		}
	}
	return errs
}

func labelsMatch(sel, lbls map[string]string) bool {
	for k, v := range sel {
		if lbls[k] != v {
			return false
		}
	}
	return true
}

// resolvePort finds the container port a Service or probe port refers to: a
// name must be a declared port name, a number a declared containerPort.
func resolvePort(t *corev1.PodTemplateSpec, p intstr.IntOrString, servicePort int32) (int32, error) {
	if p.Type == intstr.Int && p.IntVal == 0 {
		p = intstr.FromInt32(servicePort) // targetPort defaults to port
	}
	for _, c := range t.Spec.Containers {
		for _, cp := range c.Ports {
			if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
				return cp.ContainerPort, nil
			}
		}
	}
	return 0, fmt.Errorf("no container port %s", p.String())
}

// WritableRoot lists, per overlay, the workloads whose containers may have a
// writable root file system: the dev overlay's live-updated services only.
var WritableRoot = map[string][]string{"dev": {"catalog", "pricing", "gateway"}}

// CheckPods checks every container of every workload against the restricted
// Pod Security Standard and our own rules: requests and limits for CPU and
// memory, readiness and liveness probes (except one-shot Jobs), non-root,
// RuntimeDefault seccomp, no privilege escalation, all capabilities dropped,
// a read-only root file system, and no host namespaces or host paths.
func CheckPods(o *Objects, writable []string) []error {
	var errs []error
	bad := func(w Workload, c string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s container %s: %s", w, c, fmt.Sprintf(format, args...)))
	}
	for _, w := range o.Workloads() {
		ps := w.Template.Spec
		if ps.HostNetwork || ps.HostPID || ps.HostIPC {
			bad(w, "*", "host namespaces are forbidden")
		}
		for _, v := range ps.Volumes {
			if v.HostPath != nil {
				bad(w, "*", "hostPath volume %s is forbidden", v.Name)
			}
		}
		podSC := ps.SecurityContext
		if podSC == nil {
			podSC = &corev1.PodSecurityContext{}
		}
		all := append(slices.Clone(ps.InitContainers), ps.Containers...)
		for i, c := range all {
			isInit := i < len(ps.InitContainers)
			sc := c.SecurityContext
			if sc == nil {
				bad(w, c.Name, "no securityContext")
				continue
			}
			if !isTrue(firstBool(sc.RunAsNonRoot, podSC.RunAsNonRoot)) {
				bad(w, c.Name, "runAsNonRoot is not true")
			}
			if u := firstInt(sc.RunAsUser, podSC.RunAsUser); u == nil || *u == 0 {
				bad(w, c.Name, "runAsUser must be set to a non-zero uid (images may name a user PodSecurity cannot check)")
			}
			seccomp := sc.SeccompProfile
			if seccomp == nil {
				seccomp = podSC.SeccompProfile
			}
			if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
				bad(w, c.Name, "seccompProfile is not RuntimeDefault")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				bad(w, c.Name, "allowPrivilegeEscalation is not false")
			}
			if sc.Privileged != nil && *sc.Privileged {
				bad(w, c.Name, "privileged")
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				bad(w, c.Name, "capabilities must drop ALL and add none")
			}
			wantRO := !slices.Contains(writable, w.Name)
			if got := isTrue(sc.ReadOnlyRootFilesystem); got != wantRO {
				bad(w, c.Name, "readOnlyRootFilesystem is %v, want %v", got, wantRO)
			}
			for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, okReq := c.Resources.Requests[res]
				lim, okLim := c.Resources.Limits[res]
				if !okReq || !okLim {
					bad(w, c.Name, "%s request and limit are both required", res)
				} else if req.Cmp(lim) > 0 {
					bad(w, c.Name, "%s request %s exceeds limit %s", res, req.String(), lim.String())
				}
			}
			if c.Image == "" {
				bad(w, c.Name, "no image")
			}
			if w.Kind == "Job" || isInit {
				continue
			}
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil {
					bad(w, c.Name, "no %s probe", name)
					continue
				}
				if err := checkProbePort(w.Template, p); err != nil {
					bad(w, c.Name, "%s probe: %v", name, err)
				}
			}
		}
	}
	return errs
}

func checkProbePort(t *corev1.PodTemplateSpec, p *corev1.Probe) error {
	switch {
	case p.HTTPGet != nil:
		if !strings.HasPrefix(p.HTTPGet.Path, "/") {
			return fmt.Errorf("httpGet path %q", p.HTTPGet.Path)
		}
		_, err := resolvePort(t, p.HTTPGet.Port, 0)
		return err
	case p.GRPC != nil:
		_, err := resolvePort(t, intstr.FromInt32(p.GRPC.Port), 0)
		return err
	case p.TCPSocket != nil:
		_, err := resolvePort(t, p.TCPSocket.Port, 0)
		return err
	case p.Exec != nil:
		if len(p.Exec.Command) == 0 {
			return fmt.Errorf("empty exec command")
		}
		return nil
	}
	return fmt.Errorf("no probe handler")
}

func isTrue(b *bool) bool { return b != nil && *b }

func firstBool(bs ...*bool) *bool {
	for _, b := range bs {
		if b != nil {
			return b
		}
	}
	return nil
}

func firstInt(is ...*int64) *int64 {
	for _, i := range is {
		if i != nil {
			return i
		}
	}
	return nil
}

// CheckNamespace checks that every namespaced object of the system lives in
// carbuild (kube-system only for metrics-server) and that the namespace
// enforces the restricted Pod Security Standard.
func CheckNamespace(o *Objects) []error {
	var errs []error
	found := false
	for _, n := range o.Namespaces {
		if n.Name == "carbuild" {
			found = true
			if n.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
				errs = append(errs, fmt.Errorf("namespace carbuild does not enforce the restricted Pod Security Standard"))
			}
		}
	}
	if !found {
		errs = append(errs, fmt.Errorf("namespace carbuild is not part of the overlay"))
	}
	for _, w := range o.Workloads() {
		if w.Namespace != "carbuild" && !(w.Namespace == "kube-system" && w.Name == "metrics-server") {
			errs = append(errs, fmt.Errorf("%s: unexpected namespace", w))
		}
	}
	return errs
}

// CheckReferences checks that every ConfigMap, Secret (volumes, envFrom,
// secretKeyRef keys) and ServiceAccount a pod refers to is in the overlay,
// optional or not: a missing one would leave the pod without its files.
func CheckReferences(o *Objects) []error {
	var errs []error
	has := func(kind, ns, name string) bool {
		switch kind {
		case "ConfigMap":
			return slices.ContainsFunc(o.ConfigMaps, func(c *corev1.ConfigMap) bool { return c.Namespace == ns && c.Name == name })
		case "Secret":
			return slices.ContainsFunc(o.Secrets, func(s *corev1.Secret) bool { return s.Namespace == ns && s.Name == name })
		}
		for _, x := range o.Others {
			if sa, ok := x.(*corev1.ServiceAccount); ok && sa.Namespace == ns && sa.Name == name {
				return true
			}
		}
		return false
	}
	for _, w := range o.Workloads() {
		ps := w.Template.Spec
		miss := func(kind, name string) {
			if !has(kind, w.Namespace, name) {
				errs = append(errs, fmt.Errorf("%s refers to %s %s, which the overlay does not have", w, kind, name))
			}
		}
		sa := ps.ServiceAccountName
		if sa == "" {
			sa = "default"
		} else {
			miss("ServiceAccount", sa)
		}
		for _, v := range ps.Volumes {
			if v.ConfigMap != nil {
				miss("ConfigMap", v.ConfigMap.Name)
			}
			if v.Secret != nil {
				miss("Secret", v.Secret.SecretName)
			}
		}
		for _, c := range append(slices.Clone(ps.InitContainers), ps.Containers...) {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil {
					miss("Secret", ef.SecretRef.Name)
				}
				if ef.ConfigMapRef != nil {
					miss("ConfigMap", ef.ConfigMapRef.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					if _, err := secretValue(o, w.Namespace, e.ValueFrom); err != nil {
						errs = append(errs, fmt.Errorf("%s container %s env %s: %w", w, c.Name, e.Name, err))
					}
				}
			}
			for _, m := range c.VolumeMounts {
				if !slices.ContainsFunc(ps.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name }) && !slices.Contains(w.Claims, m.Name) {
					errs = append(errs, fmt.Errorf("%s container %s mounts unknown volume %s", w, c.Name, m.Name))
				}
			}
		}
	}
	return errs
}

// CheckImages checks every container image: ours are carbuild/<service>
// without a tag (Tilt or a registry override replaces the reference), others
// are pinned to a version (a tag other than latest, or a digest).
func CheckImages(o *Objects) []error {
	var errs []error
	for _, w := range o.Workloads() {
		for _, c := range append(slices.Clone(w.Template.Spec.InitContainers), w.Template.Spec.Containers...) {
			if name, ours := strings.CutPrefix(c.Image, ImagePrefix); ours {
				if _, known := ServicePackages[name]; !known {
					errs = append(errs, fmt.Errorf("%s: image %s is not one of the built services", w, c.Image))
				}
				continue
			}
			if strings.Contains(c.Image, "@sha256:") {
				continue
			}
			last := c.Image[strings.LastIndex(c.Image, "/")+1:]
			_, tag, tagged := strings.Cut(last, ":")
			if !tagged || tag == "" || tag == "latest" || !strings.ContainsAny(tag, "0123456789") {
				errs = append(errs, fmt.Errorf("%s container %s: third-party image %s is not pinned to a version", w, c.Name, c.Image))
			}
		}
	}
	return errs
}
