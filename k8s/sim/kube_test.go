package sim

// Helpers: a kubectl runner bound to the simulated cluster's kubeconfig, the subset of the
// Kubernetes API types the checks read, and label-selector matching.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// kube runs kubectl against the simulated cluster only (never the user's current context).
type kube struct {
	kubeconfig string
	kubectl    string
}

type result struct {
	stdout, stderr []byte
	err            error
}

func (k *kube) run(stdin []byte, args ...string) result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, k.kubectl, append([]string{"--kubeconfig=" + k.kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return result{out.Bytes(), errb.Bytes(), err}
}

func (k *kube) must(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	r := k.run(stdin, args...)
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.stdout
}

// getList fetches "kubectl get KINDS -A -o json" into a list of typed items.
func getList[T any](k *kube, kinds string, extra ...string) ([]T, error) {
	r := k.run(nil, append([]string{"get", kinds, "-o", "json"}, extra...)...)
	if r.err != nil {
		return nil, r.err
	}
	var l struct {
		Items []T `json:"items"`
	}
	if err := json.Unmarshal(r.stdout, &l); err != nil {
		return nil, fmt.Errorf("decode %s: %v", kinds, err)
	}
	return l.Items, nil
}

// --- API subset ---

type ownerRef struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
}

type meta struct {
	Name              string            `json:"name"`
	Namespace         string            `json:"namespace"`
	Labels            map[string]string `json:"labels"`
	Annotations       map[string]string `json:"annotations"`
	OwnerReferences   []ownerRef        `json:"ownerReferences"`
	Generation        int64             `json:"generation"`
	DeletionTimestamp *string           `json:"deletionTimestamp"`
}

type labelSelector struct {
	MatchLabels      map[string]string `json:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `json:"key"`
		Operator string   `json:"operator"`
		Values   []string `json:"values"`
	} `json:"matchExpressions"`
}

// matches implements metav1.LabelSelector semantics; a nil selector matches nothing
// (as for PDBs and workloads), an empty one matches everything (as for NetworkPolicy podSelector).
func (s *labelSelector) matches(l map[string]string) bool {
	if s == nil {
		return false
	}
	for k, v := range s.MatchLabels {
		if got, ok := l[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := l[e.Key]
		in := false
		for _, x := range e.Values {
			if ok && x == v {
				in = true
			}
		}
		switch e.Operator {
		case "In":
			if !in {
				return false
			}
		case "NotIn":
			if in {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		case "DoesNotExist":
			if ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

func (s *labelSelector) String() string {
	if s == nil {
		return "<nil>"
	}
	b, _ := json.Marshal(s)
	return string(b)
}

type containerPort struct {
	Name          string `json:"name"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol"`
}

type container struct {
	Name  string          `json:"name"`
	Image string          `json:"image"`
	Ports []containerPort `json:"ports"`
}

type podSpec struct {
	NodeName           string      `json:"nodeName"`
	ServiceAccountName string      `json:"serviceAccountName"`
	Containers         []container `json:"containers"`
	InitContainers     []container `json:"initContainers"`
}

type condition struct {
	Type    string `json:"type"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

type pod struct {
	Metadata meta    `json:"metadata"`
	Spec     podSpec `json:"spec"`
	Status   struct {
		Phase      string      `json:"phase"`
		PodIP      string      `json:"podIP"`
		Conditions []condition `json:"conditions"`
	} `json:"status"`
}

func (p *pod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

type podTemplate struct {
	Metadata meta    `json:"metadata"`
	Spec     podSpec `json:"spec"`
}

type workload struct { // Deployment, StatefulSet, ReplicaSet
	Kind     string `json:"kind"`
	Metadata meta   `json:"metadata"`
	Spec     struct {
		Replicas *int           `json:"replicas"`
		Selector *labelSelector `json:"selector"`
		Template podTemplate    `json:"template"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration int64  `json:"observedGeneration"`
		Replicas           int    `json:"replicas"`
		UpdatedReplicas    int    `json:"updatedReplicas"`
		ReadyReplicas      int    `json:"readyReplicas"`
		AvailableReplicas  int    `json:"availableReplicas"`
		CurrentRevision    string `json:"currentRevision"`
		UpdateRevision     string `json:"updateRevision"`
	} `json:"status"`
}

func (w *workload) replicas() int {
	if w.Spec.Replicas == nil {
		return 1
	}
	return *w.Spec.Replicas
}

type job struct {
	Metadata meta `json:"metadata"`
	Status   struct {
		Succeeded  int         `json:"succeeded"`
		Conditions []condition `json:"conditions"`
	} `json:"status"`
}

type pvc struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		StorageClassName *string `json:"storageClassName"`
		VolumeName       string  `json:"volumeName"`
	} `json:"spec"`
	Status struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

// intOrString keeps a JSON int or string as text ("8000" or "http").
type intOrString string

func (v *intOrString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*v = intOrString(s)
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	*v = intOrString(strconv.Itoa(n))
	return nil
}

type service struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Type      string            `json:"type"`
		ClusterIP string            `json:"clusterIP"`
		Selector  map[string]string `json:"selector"`
		Ports     []struct {
			Name       string      `json:"name"`
			Port       int         `json:"port"`
			TargetPort intOrString `json:"targetPort"`
			NodePort   int         `json:"nodePort"`
		} `json:"ports"`
	} `json:"spec"`
}

type endpointSlice struct {
	Metadata  meta `json:"metadata"`
	Endpoints []struct {
		Addresses  []string  `json:"addresses"`
		TargetRef  *ownerRef `json:"targetRef"`
		Conditions struct {
			Ready *bool `json:"ready"`
		} `json:"conditions"`
	} `json:"endpoints"`
	Ports []struct {
		Name *string `json:"name"`
		Port *int    `json:"port"`
	} `json:"ports"`
}

type hpa struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicas *int `json:"minReplicas"`
		MaxReplicas int  `json:"maxReplicas"`
		Metrics     []struct {
			Type     string `json:"type"`
			Resource *struct {
				Name   string `json:"name"`
				Target struct {
					Type               string `json:"type"`
					AverageUtilization *int   `json:"averageUtilization"`
				} `json:"target"`
			} `json:"resource"`
		} `json:"metrics"`
	} `json:"spec"`
	Status struct {
		CurrentReplicas int         `json:"currentReplicas"`
		DesiredReplicas int         `json:"desiredReplicas"`
		Conditions      []condition `json:"conditions"`
	} `json:"status"`
}

type pdb struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		MinAvailable   *intOrString   `json:"minAvailable"`
		MaxUnavailable *intOrString   `json:"maxUnavailable"`
		Selector       *labelSelector `json:"selector"`
	} `json:"spec"`
	Status struct {
		ObservedGeneration int64 `json:"observedGeneration"`
		ExpectedPods       int   `json:"expectedPods"`
		CurrentHealthy     int   `json:"currentHealthy"`
		DesiredHealthy     int   `json:"desiredHealthy"`
		DisruptionsAllowed int   `json:"disruptionsAllowed"`
	} `json:"status"`
}

type npPort struct {
	Protocol string       `json:"protocol"`
	Port     *intOrString `json:"port"`
	EndPort  *int         `json:"endPort"`
}

type npPeer struct {
	PodSelector       *labelSelector `json:"podSelector"`
	NamespaceSelector *labelSelector `json:"namespaceSelector"`
	IPBlock           *struct {
		CIDR   string   `json:"cidr"`
		Except []string `json:"except"`
	} `json:"ipBlock"`
}

type npRule struct {
	From  []npPeer `json:"from"`
	To    []npPeer `json:"to"`
	Ports []npPort `json:"ports"`
}

type networkPolicy struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		PodSelector labelSelector `json:"podSelector"`
		PolicyTypes []string      `json:"policyTypes"`
		Ingress     []npRule      `json:"ingress"`
		Egress      []npRule      `json:"egress"`
	} `json:"spec"`
}

type namespace struct {
	Metadata meta `json:"metadata"`
	Status   struct {
		Phase string `json:"phase"`
	} `json:"status"`
}

type node struct {
	Metadata meta `json:"metadata"`
	Spec     struct {
		Taints []struct {
			Key    string `json:"key"`
			Effect string `json:"effect"`
		} `json:"taints"`
	} `json:"spec"`
	Status struct {
		Allocatable map[string]string `json:"allocatable"`
		Conditions  []condition       `json:"conditions"`
	} `json:"status"`
}

// --- manifests ---

// object is one rendered manifest: enough to identify it and to filter it.
type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   meta   `json:"metadata"`
	raw        []byte // JSON
}

func (o object) key() string {
	return o.Kind + "/" + o.Metadata.Namespace + "/" + o.Metadata.Name
}

// splitYAML decodes a multi-document YAML stream (kubectl kustomize output).
func splitYAML(b []byte) ([]object, error) {
	var objs []object
	for _, doc := range bytes.Split(append([]byte("\n"), b...), []byte("\n---")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(j) == "null" {
			continue
		}
		var o object
		if err := json.Unmarshal(j, &o); err != nil {
			return nil, err
		}
		if o.Kind == "" {
			return nil, fmt.Errorf("document without kind: %.80s", doc)
		}
		o.raw = j
		objs = append(objs, o)
	}
	return objs, nil
}

// toStream re-encodes objects as one YAML stream (each document is JSON, which is YAML).
func toStream(objs []object) []byte {
	var b bytes.Buffer
	for _, o := range objs {
		b.WriteString("---\n")
		b.Write(o.raw)
		b.WriteString("\n")
	}
	return b.Bytes()
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
