package proof

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// ImagePrefix is the repository of the images Tilt and the Dockerfile build.
const ImagePrefix = "carbuild/"

// listenSuffixes name the environment variables a binary listens on.
var listenSuffixes = []string{"_GRPC_ADDR", "_HTTP_ADDR", "_METRICS_ADDR"}

func isListen(env string) bool {
	return slices.ContainsFunc(listenSuffixes, func(s string) bool { return strings.HasSuffix(env, s) })
}

// CheckBinaries compares every container running one of our images with the
// binary's real flags: every variable set is one the binary reads; every flag
// passed exists; listen addresses are set to all interfaces on the binary's
// default port, and the container declares exactly those ports; probes hit
// those ports (gRPC on the gRPC port, HTTP /readyz and /healthz on the HTTP
// port); backend addresses resolve through a Service to the backend's own gRPC
// port; DATABASE_URL comes from an existing Secret key naming the postgres
// Service; SHUTDOWN_DELAY covers the readiness probe's periodSeconds ×
// failureThreshold plus EndpointPropagation; the grace period outlasts
// SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT.
func CheckBinaries(o *Objects, bins map[string]*Binary) []error {
	var errs []error
	for _, w := range o.Workloads() {
		for _, c := range w.Template.Spec.Containers {
			name, ok := strings.CutPrefix(c.Image, ImagePrefix)
			if !ok {
				continue
			}
			b := bins[name]
			if b == nil {
				errs = append(errs, fmt.Errorf("%s: image %s is not one of the built services", w, c.Image))
				continue
			}
			for _, err := range checkContainer(o, w, c, b, bins) {
				errs = append(errs, fmt.Errorf("%s container %s (%s): %w", w, c.Name, name, err))
			}
		}
	}
	return errs
}

func checkContainer(o *Objects, w Workload, c corev1.Container, b *Binary, bins map[string]*Binary) []error {
	var errs []error
	values := map[string]string{} // env name -> literal value
	for _, e := range c.Env {
		if _, ok := b.Env(e.Name); !ok {
			errs = append(errs, fmt.Errorf("env %s is not read by the binary (its -h lists no such variable)", e.Name))
			continue
		}
		if e.ValueFrom != nil {
			v, err := secretValue(o, w.Namespace, e.ValueFrom)
			if err != nil {
				errs = append(errs, fmt.Errorf("env %s: %w", e.Name, err))
				continue
			}
			values[e.Name] = v
			continue
		}
		values[e.Name] = e.Value
	}
	if len(c.EnvFrom) > 0 {
		errs = append(errs, fmt.Errorf("envFrom hides which variables are set; list them in env"))
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		if fl, ok := strings.CutPrefix(a, "-"); ok {
			fl = strings.TrimPrefix(fl, "-")
			fl, val, hasVal := strings.Cut(fl, "=")
			f, known := b.Flags[fl]
			if !known {
				errs = append(errs, fmt.Errorf("argument %s: the binary has no flag -%s", a, fl))
				continue
			}
			if hasVal {
				values[f.Env] = val
			}
			continue
		}
		if !regexpWord(b.Help, a) {
			errs = append(errs, fmt.Errorf("argument %q is not a command the binary's -h mentions", a))
		}
	}

	// Listen addresses and container ports.
	ports := map[int32]string{} // port -> env
	for _, f := range b.Flags {
		if !isListen(f.Env) {
			continue
		}
		v, set := values[f.Env]
		if !set {
			errs = append(errs, fmt.Errorf("%s is not set; the default %q listens on loopback only", f.Env, f.Default))
			continue
		}
		host, port, err := net.SplitHostPort(v)
		if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
			errs = append(errs, fmt.Errorf("%s=%q: want \":PORT\" (all interfaces)", f.Env, v))
			continue
		}
		_, defPort, _ := net.SplitHostPort(f.Default)
		if port != defPort {
			errs = append(errs, fmt.Errorf("%s=%q: port differs from the binary's default %s", f.Env, v, f.Default))
		}
		n, _ := strconv.Atoi(port)
		ports[int32(n)] = f.Env
	}
	var declared []int32
	for _, cp := range c.Ports {
		declared = append(declared, cp.ContainerPort)
		if _, ok := ports[cp.ContainerPort]; !ok {
			errs = append(errs, fmt.Errorf("container port %d (%s) is not a port the binary listens on", cp.ContainerPort, cp.Name))
		}
	}
	for p, env := range ports {
		if !slices.Contains(declared, p) {
			errs = append(errs, fmt.Errorf("the binary listens on %d (%s) but the container does not declare it", p, env))
		}
	}

	// Probes.
	if w.Kind != "Job" {
		errs = append(errs, checkProbes(w, c, ports, values)...)
	}

	// Backend addresses.
	for _, f := range b.Flags {
		if !strings.HasSuffix(f.Env, "_ADDR") || isListen(f.Env) {
			continue
		}
		v, set := values[f.Env]
		if !set {
			errs = append(errs, fmt.Errorf("%s is not set; the default %q is loopback", f.Env, f.Default))
			continue
		}
		backend := strings.ToLower(strings.TrimSuffix(f.Env, "_ADDR"))
		if err := checkBackend(o, w.Namespace, v, backend, bins[backend]); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", f.Env, v, err))
		}
	}

	// Database.
	if _, reads := b.Env("DATABASE_URL"); reads {
		v, set := values["DATABASE_URL"]
		if !set {
			errs = append(errs, fmt.Errorf("DATABASE_URL is not set"))
		} else if err := checkDatabaseURL(o, w.Namespace, v); err != nil {
			errs = append(errs, fmt.Errorf("DATABASE_URL: %w", err))
		}
	}

	// Graceful termination.
	if w.Kind != "Job" {
		total := time.Duration(0)
		for _, env := range []string{"SHUTDOWN_DELAY", "SHUTDOWN_TIMEOUT"} {
			f, reads := b.Env(env)
			if !reads {
				continue
			}
			v, set := values[env]
			if !set {
				v = f.Default
			}
			if v == "" {
				continue
			}
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			total += d
			if env == "SHUTDOWN_DELAY" {
				if err := checkShutdownDelay(c.ReadinessProbe, d); err != nil {
					errs = append(errs, err)
				}
			}
		}
		grace := 30 * time.Second
		if g := w.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if grace <= total {
			errs = append(errs, fmt.Errorf("terminationGracePeriodSeconds %v does not outlast SHUTDOWN_DELAY + SHUTDOWN_TIMEOUT = %v", grace, total))
		}
	}
	return errs
}

// EndpointPropagation is the time allowed, after the readiness probe has
// failed often enough, for the endpoint's removal to reach every kube-proxy
// (and DNS of headless Services): docs/reliability.md's "a few seconds".
const EndpointPropagation = 3 * time.Second

// checkShutdownDelay checks the rule of docs/reliability.md: a pod keeps
// serving, already unready, for SHUTDOWN_DELAY after SIGTERM, and that must
// cover what the readiness probe needs to take it out of its Services
// (periodSeconds × failureThreshold) plus the propagation of the change;
// otherwise new requests still reach a pod that has stopped listening.
func checkShutdownDelay(p *corev1.Probe, delay time.Duration) error {
	if p == nil {
		return nil // checkProbes reports the missing probe
	}
	period, threshold := p.PeriodSeconds, p.FailureThreshold
	if period == 0 {
		period = 10 // the Kubernetes defaults
	}
	if threshold == 0 {
		threshold = 3
	}
	need := time.Duration(period*threshold)*time.Second + EndpointPropagation
	if delay < need {
		return fmt.Errorf("SHUTDOWN_DELAY %v is shorter than the readiness probe needs to take the pod out: periodSeconds %d × failureThreshold %d + propagation %v = %v",
			delay, period, threshold, EndpointPropagation, need)
	}
	return nil
}

func regexpWord(text, word string) bool {
	for _, l := range strings.Split(text, "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == word {
			return true
		}
		if strings.Contains(l, "["+word+"|") || strings.Contains(l, "|"+word+"|") || strings.Contains(l, "|"+word+"]") {
			return true
		}
	}
	return false
}

// checkProbes wants native gRPC probes on a gRPC server's port, or, when
// that port requires mTLS (GRPC_TLS_CERT set: the kubelet's gRPC probes
// cannot speak TLS), httpGet on its operations port, where /readyz and
// /healthz mirror the health service; and httpGet /readyz and /healthz on
// an HTTP server's port, over HTTPS when it serves TLS (GATEWAY_TLS_CERT).
func checkProbes(w Workload, c corev1.Container, ports map[int32]string, values map[string]string) []error {
	var errs []error
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		return []error{fmt.Errorf("readiness and liveness probes are required")}
	}
	grpcPort, httpPort, opsPort := int32(0), int32(0), int32(0)
	for p, env := range ports {
		switch {
		case strings.HasSuffix(env, "_GRPC_ADDR"):
			grpcPort = p
		case strings.HasSuffix(env, "_HTTP_ADDR"):
			httpPort = p
		case strings.HasSuffix(env, "_METRICS_ADDR"):
			opsPort = p
		}
	}
	scheme := corev1.URISchemeHTTP
	if values["GATEWAY_TLS_CERT"] != "" {
		scheme = corev1.URISchemeHTTPS
	}
	if grpcPort != 0 && values["GRPC_TLS_CERT"] != "" {
		grpcPort, httpPort = 0, opsPort
	}
	type want struct {
		probe   *corev1.Probe
		what    string
		service string // gRPC health service
		path    string // HTTP path
	}
	for _, x := range []want{{c.ReadinessProbe, "readiness", "", "/readyz"}, {c.LivenessProbe, "liveness", "liveness", "/healthz"}} {
		switch {
		case grpcPort != 0:
			g := x.probe.GRPC
			if g == nil {
				errs = append(errs, fmt.Errorf("%s probe: want a native grpc probe on %d", x.what, grpcPort))
				continue
			}
			svc := ""
			if g.Service != nil {
				svc = *g.Service
			}
			if g.Port != grpcPort || svc != x.service {
				errs = append(errs, fmt.Errorf("%s probe: grpc port %d service %q, want port %d service %q", x.what, g.Port, svc, grpcPort, x.service))
			}
		case httpPort != 0:
			h := x.probe.HTTPGet
			if h == nil {
				errs = append(errs, fmt.Errorf("%s probe: want httpGet %s on %d", x.what, x.path, httpPort))
				continue
			}
			port, err := resolvePort(w.Template, h.Port, 0)
			if err != nil || port != httpPort || h.Path != x.path {
				errs = append(errs, fmt.Errorf("%s probe: httpGet %s on %s, want %s on %d", x.what, h.Path, h.Port.String(), x.path, httpPort))
			}
			if got := cmpOr(h.Scheme, corev1.URISchemeHTTP); got != scheme {
				errs = append(errs, fmt.Errorf("%s probe: httpGet scheme %s, want %s", x.what, got, scheme))
			}
		default:
			errs = append(errs, fmt.Errorf("%s probe: the binary listens on no gRPC or HTTP port", x.what))
		}
	}
	return errs
}

func cmpOr(s, def corev1.URIScheme) corev1.URIScheme {
	if s == "" {
		return def
	}
	return s
}

// checkBackend follows "host:port" or "dns:///host:port" to a Service in the
// namespace, its target port to the backend's pods, and checks that port is
// the backend binary's gRPC listen port.
func checkBackend(o *Objects, ns, addr, backend string, bin *Binary) error {
	target := strings.TrimPrefix(addr, "dns:///")
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	host = strings.TrimSuffix(strings.TrimSuffix(host, ".svc.cluster.local"), "."+ns)
	port, _ := strconv.Atoi(portStr)
	if bin == nil {
		return fmt.Errorf("no built binary %s to compare with", backend)
	}
	var grpcPort int32
	for _, f := range bin.Flags {
		if strings.HasSuffix(f.Env, "_GRPC_ADDR") {
			_, p, _ := net.SplitHostPort(f.Default)
			n, _ := strconv.Atoi(p)
			grpcPort = int32(n)
		}
	}
	for _, s := range o.Services {
		if s.Name != host || s.Namespace != ns {
			continue
		}
		if strings.HasPrefix(addr, "dns:///") && s.Spec.ClusterIP != corev1.ClusterIPNone {
			return fmt.Errorf("dns:/// balancing needs a headless Service; %s has a cluster IP", s.Name)
		}
		for _, sp := range s.Spec.Ports {
			if sp.Port != int32(port) {
				continue
			}
			for _, w := range o.Workloads() {
				if w.Namespace != ns || !labelsMatch(s.Spec.Selector, w.Template.Labels) {
					continue
				}
				if !strings.HasPrefix(w.Template.Spec.Containers[0].Image, ImagePrefix+backend) {
					return fmt.Errorf("Service %s selects %s, not %s", s.Name, w, backend)
				}
				tp, err := resolvePort(w.Template, sp.TargetPort, sp.Port)
				if err != nil {
					return err
				}
				if tp != grpcPort {
					return fmt.Errorf("Service %s port %d reaches %s port %d, but %s serves gRPC on %d", s.Name, port, w.Name, tp, backend, grpcPort)
				}
				return nil
			}
			return fmt.Errorf("Service %s selects no pods", s.Name)
		}
		return fmt.Errorf("Service %s has no port %d", s.Name, port)
	}
	return fmt.Errorf("no Service %s in namespace %s", host, ns)
}

func checkDatabaseURL(o *Objects, ns, v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return err
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("scheme %q", u.Scheme)
	}
	host := u.Hostname()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	for _, s := range o.Services {
		if s.Name == host && s.Namespace == ns {
			for _, sp := range s.Spec.Ports {
				if strconv.Itoa(int(sp.Port)) == port {
					return nil
				}
			}
			return fmt.Errorf("Service %s has no port %s", host, port)
		}
	}
	return fmt.Errorf("no Service %s for the database host", host)
}

// secretValue reads an env valueFrom: only Secret keys are used here, and the
// Secret and key must exist.
func secretValue(o *Objects, ns string, from *corev1.EnvVarSource) (string, error) {
	ref := from.SecretKeyRef
	if ref == nil {
		return "", fmt.Errorf("only secretKeyRef is used for valueFrom")
	}
	for _, s := range o.Secrets {
		if s.Name == ref.Name && s.Namespace == ns {
			if v, ok := s.StringData[ref.Key]; ok {
				return v, nil
			}
			if v, ok := s.Data[ref.Key]; ok {
				return string(v), nil
			}
			return "", fmt.Errorf("Secret %s has no key %s", ref.Name, ref.Key)
		}
	}
	return "", fmt.Errorf("no Secret %s", ref.Name)
}
