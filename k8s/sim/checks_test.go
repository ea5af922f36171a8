package sim

// Snapshot of the cluster and the checks run on it after every apply. Each check returns
// problems as text; deploy() retries until there are none, so controllers may catch up.

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

type snapshot struct {
	pods           []pod
	deploys, stss  []workload
	rss            []workload
	jobs           []job
	pvcs           []pvc
	svcs           []service
	slices         []endpointSlice
	hpas           []hpa
	pdbs           []pdb
	nps            []networkPolicy
	nodes          []node
	nss            []namespace
	configMaps     map[string]map[string]bool // ns/name -> keys
	secrets        map[string]map[string]bool
	serviceAccount map[string]bool
	rawPods        map[string]json.RawMessage // ns/name -> pod JSON (for references)
}

const snapshotKinds = "pods,deployments,statefulsets,replicasets,jobs,persistentvolumeclaims,services," +
	"endpointslices,horizontalpodautoscalers.autoscaling,poddisruptionbudgets,networkpolicies,configmaps,secrets," +
	"serviceaccounts,nodes,namespaces"

func takeSnapshot() (*snapshot, error) {
	items, err := getList[json.RawMessage](kc, snapshotKinds, "-A")
	if err != nil {
		return nil, err
	}
	s := &snapshot{configMaps: map[string]map[string]bool{}, secrets: map[string]map[string]bool{},
		serviceAccount: map[string]bool{}, rawPods: map[string]json.RawMessage{}}
	for _, raw := range items {
		var head struct {
			Kind     string `json:"kind"`
			Metadata meta   `json:"metadata"`
			Data     map[string]json.RawMessage
			Binary   map[string]json.RawMessage `json:"binaryData"`
		}
		if err := json.Unmarshal(raw, &head); err != nil {
			return nil, err
		}
		id := head.Metadata.Namespace + "/" + head.Metadata.Name
		var err error
		switch head.Kind {
		case "Pod":
			err = add(&s.pods, raw)
			s.rawPods[id] = raw
		case "Deployment", "StatefulSet", "ReplicaSet":
			var w workload
			err = json.Unmarshal(raw, &w)
			switch head.Kind {
			case "Deployment":
				s.deploys = append(s.deploys, w)
			case "StatefulSet":
				s.stss = append(s.stss, w)
			default:
				s.rss = append(s.rss, w)
			}
		case "Job":
			err = add(&s.jobs, raw)
		case "PersistentVolumeClaim":
			err = add(&s.pvcs, raw)
		case "Service":
			err = add(&s.svcs, raw)
		case "EndpointSlice":
			err = add(&s.slices, raw)
		case "HorizontalPodAutoscaler":
			err = add(&s.hpas, raw)
		case "PodDisruptionBudget":
			err = add(&s.pdbs, raw)
		case "NetworkPolicy":
			err = add(&s.nps, raw)
		case "Node":
			err = add(&s.nodes, raw)
		case "Namespace":
			err = add(&s.nss, raw)
		case "ConfigMap", "Secret":
			keys := map[string]bool{}
			for k := range head.Data {
				keys[k] = true
			}
			for k := range head.Binary {
				keys[k] = true
			}
			if head.Kind == "ConfigMap" {
				s.configMaps[id] = keys
			} else {
				s.secrets[id] = keys
			}
		case "ServiceAccount":
			s.serviceAccount[id] = true
		}
		if err != nil {
			return nil, fmt.Errorf("decode %s %s: %v", head.Kind, id, err)
		}
	}
	return s, nil
}

func add[T any](l *[]T, raw json.RawMessage) error {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	*l = append(*l, v)
	return nil
}

func find[T any](l []T, ns, name string, m func(*T) meta) *T {
	for i := range l {
		md := m(&l[i])
		if md.Namespace == ns && md.Name == name {
			return &l[i]
		}
	}
	return nil
}

func (s *snapshot) workload(kind, ns, name string) *workload {
	l := s.deploys
	if kind == "StatefulSet" {
		l = s.stss
	}
	return find(l, ns, name, func(w *workload) meta { return w.Metadata })
}

// podsOf returns the pods a Deployment (through its ReplicaSets), StatefulSet or Job owns.
func (s *snapshot) podsOf(kind, ns, name string) []pod {
	owners := map[string]bool{}
	ownerKind := kind
	if kind == "Deployment" {
		ownerKind = "ReplicaSet"
		for _, rs := range s.rss {
			if rs.Metadata.Namespace == ns && owned(rs.Metadata, "Deployment", name) {
				owners[rs.Metadata.Name] = true
			}
		}
	} else {
		owners[name] = true
	}
	var out []pod
	for _, p := range s.pods {
		if p.Metadata.Namespace != ns {
			continue
		}
		for _, o := range p.Metadata.OwnerReferences {
			if o.Kind == ownerKind && owners[o.Name] {
				out = append(out, p)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Metadata.Name < out[j].Metadata.Name })
	return out
}

func owned(m meta, kind, name string) bool {
	for _, o := range m.OwnerReferences {
		if o.Kind == kind && o.Name == name {
			return true
		}
	}
	return false
}

func namespacesOf(objs []object) map[string]bool {
	nss := map[string]bool{}
	for _, o := range objs {
		if o.Metadata.Namespace != "" {
			nss[o.Metadata.Namespace] = true
		}
	}
	return nss
}

// converged: every workload of the overlay has its desired replicas Running and Ready (and no
// leftover pods of an older revision), PVCs are Bound, Jobs complete, HPAs and PDBs observed.
func (s *snapshot) converged(objs []object) []string {
	var p []string
	for _, o := range objs {
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		switch o.Kind {
		case "Deployment", "StatefulSet":
			w := s.workload(o.Kind, ns, name)
			if w == nil {
				p = append(p, fmt.Sprintf("%s %s/%s not found", o.Kind, ns, name))
				continue
			}
			want := w.replicas()
			st := w.Status
			if st.ObservedGeneration < w.Metadata.Generation {
				p = append(p, fmt.Sprintf("%s %s: generation %d not observed yet", o.Kind, name, w.Metadata.Generation))
			}
			if st.Replicas != want || st.UpdatedReplicas != want || st.ReadyReplicas != want ||
				(o.Kind == "Deployment" && st.AvailableReplicas != want) ||
				(o.Kind == "StatefulSet" && st.CurrentRevision != st.UpdateRevision) {
				p = append(p, fmt.Sprintf("%s %s: want %d, status replicas=%d updated=%d ready=%d available=%d",
					o.Kind, name, want, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas))
			}
			pods := s.podsOf(o.Kind, ns, name)
			running := 0
			for _, po := range pods {
				switch {
				case po.Metadata.DeletionTimestamp != nil:
					p = append(p, fmt.Sprintf("%s %s: pod %s terminating", o.Kind, name, po.Metadata.Name))
				case po.Status.Phase != "Running" || !po.ready():
					p = append(p, fmt.Sprintf("%s %s: pod %s %s ready=%v on %q", o.Kind, name, po.Metadata.Name,
						po.Status.Phase, po.ready(), po.Spec.NodeName))
				default:
					running++
				}
			}
			if running != want {
				p = append(p, fmt.Sprintf("%s %s: %d pods Running and Ready, want %d", o.Kind, name, running, want))
			}
		case "Job":
			j := find(s.jobs, ns, name, func(j *job) meta { return j.Metadata })
			if j == nil {
				p = append(p, fmt.Sprintf("Job %s/%s not found", ns, name))
				continue
			}
			complete := false
			for _, c := range j.Status.Conditions {
				if c.Type == "Complete" && c.Status == "True" {
					complete = true
				}
				if c.Type == "Failed" && c.Status == "True" {
					p = append(p, fmt.Sprintf("Job %s failed: %s", name, c.Message))
				}
			}
			if !complete {
				p = append(p, fmt.Sprintf("Job %s not complete (succeeded=%d)", name, j.Status.Succeeded))
			}
		case "HorizontalPodAutoscaler":
			h := find(s.hpas, ns, name, func(h *hpa) meta { return h.Metadata })
			if h == nil || h.Status.CurrentReplicas == 0 {
				p = append(p, fmt.Sprintf("HPA %s/%s not observed by the HPA controller yet", ns, name))
			}
		case "PodDisruptionBudget":
			d := find(s.pdbs, ns, name, func(d *pdb) meta { return d.Metadata })
			if d == nil || d.Status.ObservedGeneration < d.Metadata.Generation {
				p = append(p, fmt.Sprintf("PDB %s/%s not observed by the disruption controller yet", ns, name))
			}
		}
	}
	nss := namespacesOf(objs)
	for _, c := range s.pvcs {
		if nss[c.Metadata.Namespace] && c.Status.Phase != "Bound" {
			p = append(p, fmt.Sprintf("PVC %s/%s is %s", c.Metadata.Namespace, c.Metadata.Name, c.Status.Phase))
		}
	}
	return p
}

// checks: what the overlay is meant to produce.
func (s *snapshot) checks(overlay string, objs []object) []string {
	var p []string
	p = append(p, s.checkReplicasAndPlacement(overlay, objs)...)
	p = append(p, s.checkHPAs(overlay, objs)...)
	p = append(p, s.checkPDBs(objs)...)
	p = append(p, s.checkServices(objs)...)
	p = append(p, s.checkReferences(objs)...)
	p = append(p, s.checkNetworkPolicies(objs)...)
	p = append(p, s.checkNamespace()...)
	p = append(p, s.checkNodePorts()...)
	return p
}

// checkNodePorts: every port ctlptl.yaml maps from a Kind node to the host (30080 -> localhost:8000)
// is the nodePort of a NodePort Service, which the API server allocated.
func (s *snapshot) checkNodePorts() []string {
	ports, err := ctlptlNodePorts()
	if err != nil {
		return []string{"ctlptl.yaml: " + err.Error()}
	}
	var p []string
	for cport, hport := range ports {
		found := false
		for _, svc := range s.svcs {
			for _, sp := range svc.Spec.Ports {
				if svc.Spec.Type == "NodePort" && sp.NodePort == cport {
					found = true
				}
			}
		}
		if !found {
			p = append(p, fmt.Sprintf("ctlptl.yaml maps node port %d to localhost:%d, but no NodePort Service has nodePort %d", cport, hport, cport))
		}
	}
	return p
}

func (s *snapshot) checkNamespace() []string {
	for _, n := range s.nss {
		if n.Metadata.Name == appNS {
			if got := n.Metadata.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
				return []string{fmt.Sprintf("namespace %s: pod-security.kubernetes.io/enforce=%q, want restricted", appNS, got)}
			}
			return nil
		}
	}
	return []string{"namespace " + appNS + " not found"}
}

func (s *snapshot) nodeRole(name string) (worker string, controlPlane bool) {
	for _, n := range s.nodes {
		if n.Metadata.Name == name {
			_, cp := n.Metadata.Labels["node-role.kubernetes.io/control-plane"]
			return n.Metadata.Labels["worker-id"], cp
		}
	}
	return "", false
}

func (s *snapshot) workers() []string {
	var w []string
	for _, n := range s.nodes {
		if _, ok := n.Metadata.Labels["worker-id"]; ok {
			w = append(w, n.Metadata.Name)
		}
	}
	sort.Strings(w)
	return w
}

func (s *snapshot) checkReplicasAndPlacement(overlay string, objs []object) []string {
	var p []string
	e := expectations[overlay]
	for _, svc := range services {
		pods := s.podsOf("Deployment", appNS, svc)
		if len(pods) != e.replicas[svc] {
			p = append(p, fmt.Sprintf("%s: %d pods of %s, want %d", overlay, len(pods), svc, e.replicas[svc]))
		}
		if e.oneReplicaPerWorker {
			per := map[string]int{}
			for _, po := range pods {
				per[po.Spec.NodeName]++
			}
			for _, w := range s.workers() {
				if per[w] != 1 {
					p = append(p, fmt.Sprintf("%s: %d pods of %s on worker %s, want exactly 1", overlay, per[w], svc, w))
				}
			}
		}
	}
	// Nothing of ours may land on the tainted control-plane node, in any overlay.
	nss := namespacesOf(objs)
	for _, po := range s.pods {
		if !nss[po.Metadata.Namespace] {
			continue
		}
		if _, cp := s.nodeRole(po.Spec.NodeName); cp {
			p = append(p, fmt.Sprintf("pod %s/%s scheduled on the control-plane node %s", po.Metadata.Namespace, po.Metadata.Name, po.Spec.NodeName))
		}
	}
	return p
}

func (s *snapshot) checkHPAs(overlay string, objs []object) []string {
	var p []string
	want := expectations[overlay].hpa
	seen := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		seen[o.Metadata.Name] = true
		bounds, ok := want[o.Metadata.Name]
		if !ok {
			p = append(p, fmt.Sprintf("%s: unexpected HPA %s", overlay, o.Metadata.Name))
			continue
		}
		h := find(s.hpas, o.Metadata.Namespace, o.Metadata.Name, func(h *hpa) meta { return h.Metadata })
		if h == nil {
			continue // converged() reports it
		}
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.APIVersion != "apps/v1" || ref.Name != o.Metadata.Name {
			p = append(p, fmt.Sprintf("HPA %s targets %s %s/%s, want apps/v1 Deployment %s", o.Metadata.Name, ref.APIVersion, ref.Kind, ref.Name, o.Metadata.Name))
		}
		min := 1
		if h.Spec.MinReplicas != nil {
			min = *h.Spec.MinReplicas
		}
		if min != bounds[0] || h.Spec.MaxReplicas != bounds[1] {
			p = append(p, fmt.Sprintf("HPA %s: min %d max %d, want %d..%d", o.Metadata.Name, min, h.Spec.MaxReplicas, bounds[0], bounds[1]))
		}
		cpu := false
		for _, m := range h.Spec.Metrics {
			cpu = cpu || (m.Type == "Resource" && m.Resource != nil && m.Resource.Name == "cpu")
		}
		if !cpu {
			p = append(p, fmt.Sprintf("HPA %s: no CPU resource metric", o.Metadata.Name))
		}
		// AbleToScale=True: the controller resolved the target's scale subresource.
		able := false
		for _, c := range h.Status.Conditions {
			able = able || (c.Type == "AbleToScale" && c.Status == "True")
		}
		if !able {
			p = append(p, fmt.Sprintf("HPA %s: AbleToScale is not True: %+v", o.Metadata.Name, h.Status.Conditions))
		}
		if d := s.workload("Deployment", h.Metadata.Namespace, ref.Name); d != nil {
			if r := d.replicas(); r < min || r > h.Spec.MaxReplicas {
				p = append(p, fmt.Sprintf("Deployment %s: %d replicas outside its HPA's %d..%d", ref.Name, r, min, h.Spec.MaxReplicas))
			}
		}
		// The rendered Deployment must leave spec.replicas to the HPA, or every apply resets it.
		for _, d := range objs {
			if d.Kind == "Deployment" && d.Metadata.Name == ref.Name {
				var spec struct {
					Spec map[string]json.RawMessage `json:"spec"`
				}
				_ = json.Unmarshal(d.raw, &spec)
				if _, has := spec.Spec["replicas"]; has {
					p = append(p, fmt.Sprintf("Deployment %s sets spec.replicas although HPA %s scales it", ref.Name, o.Metadata.Name))
				}
			}
		}
	}
	for name := range want {
		if !seen[name] {
			p = append(p, fmt.Sprintf("%s: HPA %s missing", overlay, name))
		}
	}
	return p
}

// checkPDBs: every PDB covers exactly the pods of its workload and allows a disruption.
func (s *snapshot) checkPDBs(objs []object) []string {
	var p []string
	for _, o := range objs {
		if o.Kind != "PodDisruptionBudget" {
			continue
		}
		d := find(s.pdbs, o.Metadata.Namespace, o.Metadata.Name, func(d *pdb) meta { return d.Metadata })
		if d == nil {
			continue
		}
		kind, ok := s.workloadKind(objs, o.Metadata.Name)
		if !ok {
			p = append(p, fmt.Sprintf("PDB %s: no Deployment or StatefulSet of the same name", o.Metadata.Name))
			continue
		}
		want := names(runningPods(s.podsOf(kind, o.Metadata.Namespace, o.Metadata.Name)))
		var got []string
		for _, po := range s.pods {
			if po.Metadata.Namespace == o.Metadata.Namespace && po.Status.Phase == "Running" && d.Spec.Selector.matches(po.Metadata.Labels) {
				got = append(got, po.Metadata.Name)
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			p = append(p, fmt.Sprintf("PDB %s selects %v, want the pods of %s %s: %v", o.Metadata.Name, got, kind, o.Metadata.Name, want))
		}
		if d.Status.ExpectedPods != len(want) || d.Status.CurrentHealthy != len(want) {
			p = append(p, fmt.Sprintf("PDB %s: expectedPods=%d currentHealthy=%d, want %d", o.Metadata.Name, d.Status.ExpectedPods, d.Status.CurrentHealthy, len(want)))
		}
		if d.Status.DisruptionsAllowed < 1 {
			p = append(p, fmt.Sprintf("PDB %s allows no disruption (%d healthy, %d desired): a node drain would block", o.Metadata.Name, d.Status.CurrentHealthy, d.Status.DesiredHealthy))
		}
	}
	return p
}

func (s *snapshot) workloadKind(objs []object, name string) (string, bool) {
	for _, o := range objs {
		if (o.Kind == "Deployment" || o.Kind == "StatefulSet") && o.Metadata.Name == name {
			return o.Kind, true
		}
	}
	return "", false
}

func runningPods(ps []pod) []pod {
	var out []pod
	for _, p := range ps {
		if p.Status.Phase == "Running" && p.Metadata.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func names(ps []pod) []string {
	var n []string
	for _, p := range ps {
		n = append(n, p.Metadata.Name)
	}
	sort.Strings(n)
	return n
}

// checkServices: each Service's EndpointSlices list exactly the Ready pods of the workload of the
// same name, and every Service port resolved to a container port.
func (s *snapshot) checkServices(objs []object) []string {
	var p []string
	for _, o := range objs {
		if o.Kind != "Service" {
			continue
		}
		ns, name := o.Metadata.Namespace, o.Metadata.Name
		svc := find(s.svcs, ns, name, func(x *service) meta { return x.Metadata })
		if svc == nil {
			p = append(p, fmt.Sprintf("Service %s/%s not found", ns, name))
			continue
		}
		// A Service is for the workload of its name; "X-headless" (DNS per pod, for client-side
		// gRPC load balancing) is for X too.
		wl := strings.TrimSuffix(name, "-headless")
		kind, ok := s.workloadKind(objs, wl)
		if !ok {
			p = append(p, fmt.Sprintf("Service %s: no Deployment or StatefulSet named %s, cannot tell which pods it is for", name, wl))
			continue
		}
		want := names(runningPods(s.podsOf(kind, ns, wl)))
		var got []string
		ports := map[string]bool{}
		for _, sl := range s.slices {
			if sl.Metadata.Namespace != ns || sl.Metadata.Labels["kubernetes.io/service-name"] != name {
				continue
			}
			for _, ep := range sl.Endpoints {
				if ep.TargetRef != nil && ep.TargetRef.Kind == "Pod" && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
					got = append(got, ep.TargetRef.Name)
				}
			}
			for _, sp := range sl.Ports {
				if sp.Name != nil && sp.Port != nil && len(sl.Endpoints) > 0 {
					ports[*sp.Name] = true
				}
			}
		}
		sort.Strings(got)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			p = append(p, fmt.Sprintf("Service %s endpoints %v, want the Ready pods of %s %s: %v", name, got, kind, wl, want))
		}
		for _, sp := range svc.Spec.Ports {
			if !ports[sp.Name] {
				p = append(p, fmt.Sprintf("Service %s port %q (targetPort %s) did not resolve to a container port of its pods", name, sp.Name, sp.TargetPort))
			}
		}
	}
	return p
}

// checkReferences: ConfigMaps, Secrets (and their keys) and ServiceAccounts the pods use exist.
// The kubelet would refuse to start such a pod (CreateContainerConfigError); kwok does not.
func (s *snapshot) checkReferences(objs []object) []string {
	var p []string
	nss := namespacesOf(objs)
	type ref struct {
		Name     string `json:"name"`
		Key      string `json:"key"`
		Optional *bool  `json:"optional"`
	}
	type envSource struct {
		ConfigMapKeyRef *ref `json:"configMapKeyRef"`
		SecretKeyRef    *ref `json:"secretKeyRef"`
	}
	type ctr struct {
		Name string `json:"name"`
		Env  []struct {
			Name      string     `json:"name"`
			ValueFrom *envSource `json:"valueFrom"`
		} `json:"env"`
		EnvFrom []struct {
			ConfigMapRef *ref `json:"configMapRef"`
			SecretRef    *ref `json:"secretRef"`
		} `json:"envFrom"`
	}
	var ps struct {
		Spec struct {
			ServiceAccountName string `json:"serviceAccountName"`
			Containers         []ctr  `json:"containers"`
			InitContainers     []ctr  `json:"initContainers"`
			Volumes            []struct {
				Name      string `json:"name"`
				ConfigMap *ref   `json:"configMap"`
				Secret    *struct {
					SecretName string `json:"secretName"`
					Optional   *bool  `json:"optional"`
				} `json:"secret"`
				PVC *struct {
					ClaimName string `json:"claimName"`
				} `json:"persistentVolumeClaim"`
			} `json:"volumes"`
		} `json:"spec"`
	}
	opt := func(b *bool) bool { return b != nil && *b }
	for id, raw := range s.rawPods {
		ns := strings.SplitN(id, "/", 2)[0]
		if !nss[ns] {
			continue
		}
		ps.Spec.Containers, ps.Spec.InitContainers, ps.Spec.Volumes = nil, nil, nil
		if err := json.Unmarshal(raw, &ps); err != nil {
			p = append(p, err.Error())
			continue
		}
		need := func(what string, m map[string]map[string]bool, name, key string, optional bool) {
			if optional {
				return
			}
			keys, ok := m[ns+"/"+name]
			if !ok {
				p = append(p, fmt.Sprintf("pod %s: %s %s/%s does not exist", id, what, ns, name))
			} else if key != "" && !keys[key] {
				p = append(p, fmt.Sprintf("pod %s: %s %s/%s has no key %q", id, what, ns, name, key))
			}
		}
		if sa := ps.Spec.ServiceAccountName; sa != "" && !s.serviceAccount[ns+"/"+sa] {
			p = append(p, fmt.Sprintf("pod %s: ServiceAccount %s does not exist", id, sa))
		}
		for _, c := range append(ps.Spec.Containers, ps.Spec.InitContainers...) {
			for _, e := range c.Env {
				if e.ValueFrom == nil {
					continue
				}
				if r := e.ValueFrom.ConfigMapKeyRef; r != nil {
					need("ConfigMap", s.configMaps, r.Name, r.Key, opt(r.Optional))
				}
				if r := e.ValueFrom.SecretKeyRef; r != nil {
					need("Secret", s.secrets, r.Name, r.Key, opt(r.Optional))
				}
			}
			for _, e := range c.EnvFrom {
				if r := e.ConfigMapRef; r != nil {
					need("ConfigMap", s.configMaps, r.Name, "", opt(r.Optional))
				}
				if r := e.SecretRef; r != nil {
					need("Secret", s.secrets, r.Name, "", opt(r.Optional))
				}
			}
		}
		for _, v := range ps.Spec.Volumes {
			if v.ConfigMap != nil {
				need("ConfigMap", s.configMaps, v.ConfigMap.Name, "", opt(v.ConfigMap.Optional))
			}
			if v.Secret != nil {
				need("Secret", s.secrets, v.Secret.SecretName, "", opt(v.Secret.Optional))
			}
			if v.PVC != nil && find(s.pvcs, ns, v.PVC.ClaimName, func(c *pvc) meta { return c.Metadata }) == nil {
				p = append(p, fmt.Sprintf("pod %s: PVC %s does not exist", id, v.PVC.ClaimName))
			}
		}
	}
	return p
}

// --- NetworkPolicy evaluation ---

// flow is a connection the NetworkPolicies must admit (allowed) or refuse. from/to name a
// Deployment, StatefulSet or Job in the app namespace; "stranger" is a pod there without labels.
type flow struct {
	from, to string
	port     int
	allowed  bool
}

// flows: issue 4 — "NetworkPolicies admitting only gateway -> catalog/pricing, pricing -> catalog,
// services -> PostgreSQL, Prometheus -> metrics ports"; the gateway is the public entry.
var flows = []flow{
	{"gateway", "catalog", 50051, true},
	{"pricing", "catalog", 50051, true},
	{"gateway", "pricing", 50052, true},
	{"catalog", "postgres", 5432, true},
	{"pricing", "postgres", 5432, true},
	{"migrate", "postgres", 5432, true},
	{"prometheus", "catalog", 9091, true},
	{"prometheus", "pricing", 9092, true},
	{"prometheus", "gateway", 8000, true},
	{"locust-worker", "gateway", 8000, true},
	{"stranger", "gateway", 8000, true},
	{"grafana", "prometheus", 9090, true},
	{"locust-worker", "locust-master", 5557, true},

	{"catalog", "pricing", 50052, false},
	{"stranger", "catalog", 50051, false},
	{"stranger", "pricing", 50052, false},
	{"stranger", "postgres", 5432, false},
	{"locust-worker", "catalog", 50051, false},
	{"locust-worker", "pricing", 50052, false},
	{"gateway", "postgres", 5432, false},
	{"prometheus", "postgres", 5432, false},
	{"grafana", "postgres", 5432, false},
	{"gateway", "catalog", 9091, false},
	{"gateway", "pricing", 9092, false},
	{"stranger", "prometheus", 9090, false},
	{"stranger", "locust-master", 5557, false},
	{"stranger", "grafana", 3000, false},
}

type endpoint struct {
	ns     string
	labels map[string]string
	ip     string
	ports  []containerPort
}

func (s *snapshot) nsLabels(ns string) map[string]string {
	for _, n := range s.nss {
		if n.Metadata.Name == ns {
			return n.Metadata.Labels
		}
	}
	return nil
}

func (s *snapshot) peerMatches(policyNS string, peer npPeer, e endpoint) bool {
	if peer.IPBlock != nil {
		_, cidr, err := net.ParseCIDR(peer.IPBlock.CIDR)
		ip := net.ParseIP(e.ip)
		if err != nil || ip == nil || !cidr.Contains(ip) {
			return false
		}
		for _, ex := range peer.IPBlock.Except {
			if _, c, err := net.ParseCIDR(ex); err == nil && c.Contains(ip) {
				return false
			}
		}
		return true
	}
	if peer.NamespaceSelector != nil {
		if !peer.NamespaceSelector.matches(s.nsLabels(e.ns)) {
			return false
		}
	} else if e.ns != policyNS {
		return false
	}
	if peer.PodSelector != nil {
		return peer.PodSelector.matches(e.labels)
	}
	return true
}

func portMatches(rulePorts []npPort, target endpoint, port int) bool {
	if len(rulePorts) == 0 {
		return true
	}
	for _, rp := range rulePorts {
		if rp.Protocol != "" && rp.Protocol != "TCP" {
			continue
		}
		if rp.Port == nil {
			return true
		}
		if n, err := strconv.Atoi(string(*rp.Port)); err == nil {
			if port == n || (rp.EndPort != nil && port >= n && port <= *rp.EndPort) {
				return true
			}
			continue
		}
		for _, cp := range target.ports { // named port: resolved on the destination pod
			if cp.Name == string(*rp.Port) && cp.ContainerPort == port {
				return true
			}
		}
	}
	return false
}

// allowed evaluates NetworkPolicy semantics (isolation by policyTypes, union of rules) for one TCP connection.
func (s *snapshot) allowed(src, dst endpoint, port int) (bool, string) {
	isolatedIn, isolatedOut := false, false
	in, out := false, false
	var inBy, outBy []string
	for _, np := range s.nps {
		types := np.Spec.PolicyTypes
		if len(types) == 0 {
			types = []string{"Ingress"}
			if len(np.Spec.Egress) > 0 {
				types = append(types, "Egress")
			}
		}
		for _, ty := range types {
			if ty == "Ingress" && np.Metadata.Namespace == dst.ns && np.Spec.PodSelector.matches(dst.labels) {
				isolatedIn = true
				for _, r := range np.Spec.Ingress {
					if portMatches(r.Ports, dst, port) && (len(r.From) == 0 || anyPeer(s, np.Metadata.Namespace, r.From, src)) {
						in = true
						inBy = append(inBy, np.Metadata.Name)
					}
				}
			}
			if ty == "Egress" && np.Metadata.Namespace == src.ns && np.Spec.PodSelector.matches(src.labels) {
				isolatedOut = true
				for _, r := range np.Spec.Egress {
					if portMatches(r.Ports, dst, port) && (len(r.To) == 0 || anyPeer(s, np.Metadata.Namespace, r.To, dst)) {
						out = true
						outBy = append(outBy, np.Metadata.Name)
					}
				}
			}
		}
	}
	okIn, okOut := !isolatedIn || in, !isolatedOut || out
	why := fmt.Sprintf("ingress isolated=%v admitted by %v; egress isolated=%v admitted by %v", isolatedIn, inBy, isolatedOut, outBy)
	return okIn && okOut, why
}

func anyPeer(s *snapshot, ns string, peers []npPeer, e endpoint) bool {
	for _, p := range peers {
		if s.peerMatches(ns, p, e) {
			return true
		}
	}
	return false
}

func (s *snapshot) endpointsOf(objs []object, name string) ([]endpoint, error) {
	if name == "stranger" {
		return []endpoint{{ns: appNS, labels: map[string]string{}, ip: "10.244.255.254"}}, nil
	}
	kind := ""
	for _, o := range objs {
		if o.Metadata.Namespace == appNS && o.Metadata.Name == name && (o.Kind == "Deployment" || o.Kind == "StatefulSet" || o.Kind == "Job") {
			kind = o.Kind
		}
	}
	if kind == "" {
		return nil, fmt.Errorf("network flow names %q, which the overlay does not deploy", name)
	}
	var es []endpoint
	for _, p := range s.podsOf(kind, appNS, name) {
		var ports []containerPort
		for _, c := range p.Spec.Containers {
			ports = append(ports, c.Ports...)
		}
		es = append(es, endpoint{ns: p.Metadata.Namespace, labels: p.Metadata.Labels, ip: p.Status.PodIP, ports: ports})
	}
	if len(es) == 0 {
		return nil, fmt.Errorf("network flow: no pods of %s %s", kind, name)
	}
	return es, nil
}

// checkNetworkPolicies: every policy governs some pod, every peer selector selects some pod,
// and the required flows are admitted and the others refused, for every pod pair.
func (s *snapshot) checkNetworkPolicies(objs []object) []string {
	var p []string
	for _, np := range s.nps {
		if !namespacesOf(objs)[np.Metadata.Namespace] {
			continue
		}
		governs := 0
		for _, po := range s.pods {
			if po.Metadata.Namespace == np.Metadata.Namespace && np.Spec.PodSelector.matches(po.Metadata.Labels) {
				governs++
			}
		}
		if governs == 0 {
			p = append(p, fmt.Sprintf("NetworkPolicy %s: podSelector %s selects no pod", np.Metadata.Name, np.Spec.PodSelector.String()))
		}
		// "X-ingress" governs exactly the pods of workload X (a policy for all pods, such as
		// default-deny-ingress, has an empty podSelector).
		sel := np.Spec.PodSelector
		if wl := strings.TrimSuffix(np.Metadata.Name, "-ingress"); wl != np.Metadata.Name && (len(sel.MatchLabels) > 0 || len(sel.MatchExpressions) > 0) {
			kind, ok := s.workloadKind(objs, wl)
			if !ok {
				p = append(p, fmt.Sprintf("NetworkPolicy %s: no Deployment or StatefulSet %s for it to govern", np.Metadata.Name, wl))
			} else {
				var got []string
				for _, po := range s.pods {
					if po.Metadata.Namespace == np.Metadata.Namespace && po.Metadata.DeletionTimestamp == nil &&
						po.Status.Phase == "Running" && np.Spec.PodSelector.matches(po.Metadata.Labels) {
						got = append(got, po.Metadata.Name)
					}
				}
				sort.Strings(got)
				if want := names(runningPods(s.podsOf(kind, np.Metadata.Namespace, wl))); strings.Join(got, ",") != strings.Join(want, ",") {
					p = append(p, fmt.Sprintf("NetworkPolicy %s governs %v, want the pods of %s %s: %v", np.Metadata.Name, got, kind, wl, want))
				}
			}
		}
		for _, r := range append(np.Spec.Ingress, np.Spec.Egress...) {
			for _, peer := range append(r.From, r.To...) {
				if peer.PodSelector == nil || peer.IPBlock != nil {
					continue
				}
				n := 0
				for _, po := range s.pods {
					if s.peerMatches(np.Metadata.Namespace, peer, endpoint{ns: po.Metadata.Namespace, labels: po.Metadata.Labels}) {
						n++
					}
				}
				if n == 0 {
					p = append(p, fmt.Sprintf("NetworkPolicy %s: peer podSelector %s selects no pod", np.Metadata.Name, peer.PodSelector.String()))
				}
			}
		}
	}
	for _, f := range flows {
		srcs, err := s.endpointsOf(objs, f.from)
		if err != nil {
			p = append(p, err.Error())
			continue
		}
		dsts, err := s.endpointsOf(objs, f.to)
		if err != nil {
			p = append(p, err.Error())
			continue
		}
	pairs:
		for _, src := range srcs {
			for _, dst := range dsts {
				if ok, why := s.allowed(src, dst, f.port); ok != f.allowed {
					verb := map[bool]string{true: "admitted", false: "refused"}
					p = append(p, fmt.Sprintf("NetworkPolicy: %s -> %s:%d is %s, want %s (%s)", f.from, f.to, f.port, verb[ok], verb[f.allowed], why))
					break pairs // one report per flow, not per pod pair
				}
			}
		}
	}
	return p
}
