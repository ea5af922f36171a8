package proof

import (
	"fmt"
	"slices"

	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

// The ctlptl types mirror github.com/tilt-dev/ctlptl/pkg/api (ctlptl.dev/v1alpha1),
// whose module is not available here; the Kind part is Kind's own v1alpha4 type.

// CtlptlTypeMeta is ctlptl's TypeMeta.
type CtlptlTypeMeta struct {
	Kind       string `json:"kind,omitempty"`
	APIVersion string `json:"apiVersion,omitempty"`
}

// CtlptlCluster is ctlptl's Cluster without its read-only status.
type CtlptlCluster struct {
	CtlptlTypeMeta      `json:",inline"`
	Name                string            `json:"name,omitempty"`
	Product             string            `json:"product,omitempty"`
	MinCPUs             int               `json:"minCPUs,omitempty"`
	Registry            string            `json:"registry,omitempty"`
	KubernetesVersion   string            `json:"kubernetesVersion,omitempty"`
	KindV1Alpha4Cluster *v1alpha4.Cluster `json:"kindV1Alpha4Cluster,omitempty"`
}

// CtlptlRegistry is ctlptl's Registry without its read-only status.
type CtlptlRegistry struct {
	CtlptlTypeMeta `json:",inline"`
	Name           string `json:"name,omitempty"`
	Port           int    `json:"port,omitempty"`
}

// Ctlptl is a decoded ctlptl.yaml.
type Ctlptl struct {
	Clusters   []CtlptlCluster
	Registries []CtlptlRegistry
}

// DecodeCtlptl strictly decodes every document of a ctlptl file.
func DecodeCtlptl(data []byte) (*Ctlptl, error) {
	docs, err := SplitDocs(data)
	if err != nil {
		return nil, err
	}
	out := &Ctlptl{}
	for _, d := range docs {
		if d.APIVersion != "ctlptl.dev/v1alpha1" {
			return nil, fmt.Errorf("%s: apiVersion %q, want ctlptl.dev/v1alpha1", d.Kind, d.APIVersion)
		}
		switch d.Kind {
		case "Cluster":
			var c CtlptlCluster
			if err := yaml.UnmarshalStrict(d.Raw, &c); err != nil {
				return nil, fmt.Errorf("Cluster: %w", err)
			}
			out.Clusters = append(out.Clusters, c)
		case "Registry":
			var r CtlptlRegistry
			if err := yaml.UnmarshalStrict(d.Raw, &r); err != nil {
				return nil, fmt.Errorf("Registry: %w", err)
			}
			out.Registries = append(out.Registries, r)
		default:
			return nil, fmt.Errorf("unknown ctlptl kind %q", d.Kind)
		}
	}
	return out, nil
}

// GatewayNodePort and GatewayHostPort: the gateway answers on localhost:8000
// through NodePort 30080.
const (
	GatewayNodePort = 30080
	GatewayHostPort = 8000
)

// CheckCtlptl checks the cluster layout: one Kind cluster named kind-NAME with
// a registry, one control plane and three workers labelled worker-id 1..3,
// and the gateway's NodePort published on the host.
func CheckCtlptl(c *Ctlptl) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Registries) != 1 || len(c.Clusters) != 1 {
		return []error{fmt.Errorf("want one Registry and one Cluster, got %d and %d", len(c.Registries), len(c.Clusters))}
	}
	reg, cl := c.Registries[0], c.Clusters[0]
	if reg.Name == "" || reg.Port == 0 {
		bad("registry needs a name and a fixed host port")
	}
	if cl.Registry != reg.Name {
		bad("cluster uses registry %q, the file defines %q", cl.Registry, reg.Name)
	}
	if cl.Product != "kind" {
		bad("cluster product %q, want kind", cl.Product)
	}
	k := cl.KindV1Alpha4Cluster
	if k == nil {
		return append(errs, fmt.Errorf("no kindV1Alpha4Cluster"))
	}
	if k.APIVersion != "" && k.APIVersion != "kind.x-k8s.io/v1alpha4" || k.Kind != "" && k.Kind != "Cluster" {
		bad("kind config is %s %s, want kind.x-k8s.io/v1alpha4 Cluster", k.APIVersion, k.Kind)
	}
	if cl.Name != "kind-"+k.Name {
		bad("ctlptl cluster name %q must be \"kind-\" + the Kind name %q", cl.Name, k.Name)
	}
	var cps, workers int
	var ids []string
	mapped := false
	for _, n := range k.Nodes {
		switch n.Role {
		case v1alpha4.ControlPlaneRole:
			cps++
		case v1alpha4.WorkerRole:
			workers++
			ids = append(ids, n.Labels["worker-id"])
		default:
			bad("node role %q", n.Role)
		}
		for _, m := range n.ExtraPortMappings {
			if m.ContainerPort == GatewayNodePort && m.HostPort == GatewayHostPort && (m.Protocol == "" || m.Protocol == v1alpha4.PortMappingProtocolTCP) {
				mapped = true
			}
		}
	}
	if cps != 1 || workers != 3 {
		bad("nodes: %d control planes and %d workers, want 1 and 3", cps, workers)
	}
	slices.Sort(ids)
	if !slices.Equal(ids, []string{"1", "2", "3"}) {
		bad("worker-id labels %v, want 1, 2, 3", ids)
	}
	if !mapped {
		bad("no extraPortMapping of NodePort %d to host port %d", GatewayNodePort, GatewayHostPort)
	}
	return errs
}

// HostPorts lists the host ports the Kind nodes publish.
func (c *Ctlptl) HostPorts() []int32 {
	var out []int32
	for _, cl := range c.Clusters {
		if cl.KindV1Alpha4Cluster == nil {
			continue
		}
		for _, n := range cl.KindV1Alpha4Cluster.Nodes {
			for _, m := range n.ExtraPortMappings {
				out = append(out, m.HostPort)
			}
		}
	}
	for _, r := range c.Registries {
		out = append(out, int32(r.Port))
	}
	return out
}
