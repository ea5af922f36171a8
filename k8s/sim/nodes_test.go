package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

type ctlptlCluster struct {
	Name string `json:"name"`
	Kind struct {
		Name  string `json:"name"`
		Nodes []struct {
			Role             string            `json:"role"`
			Labels           map[string]string `json:"labels"`
			ExtraPortMapping []struct {
				ContainerPort int `json:"containerPort"`
				HostPort      int `json:"hostPort"`
			} `json:"extraPortMappings"`
		} `json:"nodes"`
	} `json:"kindV1Alpha4Cluster"`
}

// ctlptlNodePorts: Kind node container port -> host port, from ctlptl.yaml's extraPortMappings.
func ctlptlNodePorts() (map[int]int, error) {
	b, err := os.ReadFile(ctlptlPath)
	if err != nil {
		return nil, err
	}
	docs, err := splitYAML(b)
	if err != nil {
		return nil, err
	}
	ports := map[int]int{}
	for _, d := range docs {
		if d.Kind != "Cluster" {
			continue
		}
		var cl ctlptlCluster
		if err := json.Unmarshal(d.raw, &cl); err != nil {
			return nil, err
		}
		for _, n := range cl.Kind.Nodes {
			for _, m := range n.ExtraPortMapping {
				ports[m.ContainerPort] = m.HostPort
			}
		}
	}
	return ports, nil
}

// TestNodesMirrorCtlptl: the simulated nodes have the layout of the Kind cluster in ctlptl.yaml:
// names as Kind makes them, labels, the control-plane taint kubeadm sets.
func TestNodesMirrorCtlptl(t *testing.T) {
	b, err := os.ReadFile(ctlptlPath)
	if err != nil {
		t.Fatalf("read %s: %v", ctlptlPath, err)
	}
	docs, err := splitYAML(b)
	if err != nil {
		t.Fatalf("decode %s: %v", ctlptlPath, err)
	}
	var cl ctlptlCluster
	for _, d := range docs {
		if d.Kind == "Cluster" {
			if err := json.Unmarshal(d.raw, &cl); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(cl.Kind.Nodes) == 0 {
		t.Fatalf("%s: no Cluster with kindV1Alpha4Cluster.nodes", ctlptlPath)
	}
	cluster := cl.Kind.Name
	if cluster == "" {
		cluster = strings.TrimPrefix(cl.Name, "kind-")
	}
	nodes, err := getList[node](kc, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]node{}
	for _, n := range nodes {
		byName[n.Metadata.Name] = n
	}
	workers := 0
	for _, kn := range cl.Kind.Nodes {
		var name string
		switch kn.Role {
		case "control-plane":
			name = cluster + "-control-plane"
		case "worker":
			workers++
			name = cluster + "-worker"
			if workers > 1 {
				name += fmt.Sprint(workers)
			}
		default:
			t.Errorf("unknown Kind node role %q", kn.Role)
			continue
		}
		n, ok := byName[name]
		if !ok {
			t.Errorf("Kind would create node %s; the simulated cluster has %v", name, sortedKeys(byName))
			continue
		}
		delete(byName, name)
		for k, v := range kn.Labels {
			if n.Metadata.Labels[k] != v {
				t.Errorf("node %s: label %s=%q in ctlptl.yaml, %q in the simulation", name, k, v, n.Metadata.Labels[k])
			}
		}
		tainted := false
		for _, ta := range n.Spec.Taints {
			tainted = tainted || (ta.Key == "node-role.kubernetes.io/control-plane" && ta.Effect == "NoSchedule")
		}
		if tainted != (kn.Role == "control-plane") {
			t.Errorf("node %s: control-plane NoSchedule taint = %v, want %v", name, tainted, kn.Role == "control-plane")
		}
		t.Logf("node %-24s role=%-13s ctlptl labels=%v allocatable cpu=%s memory=%s pods=%s", name, kn.Role,
			kn.Labels, n.Status.Allocatable["cpu"], n.Status.Allocatable["memory"], n.Status.Allocatable["pods"])
	}
	if len(byName) > 0 {
		t.Errorf("the simulation has nodes Kind would not create: %v", sortedKeys(byName))
	}
}
