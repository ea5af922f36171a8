// Command kindcfg reads the repository's ctlptl.yaml for the offline Kind test
// and writes what the test needs from it, so the cluster is always the one the
// file declares:
//
//	kindcfg -in ctlptl.yaml -image NODE_IMAGE -ctlptl OUT.yaml -kind OUT-kind.yaml -summary OUT.json
//
// -ctlptl is ctlptl.yaml with every node's image set to the locally built node
// image (the default kindest/node cannot be pulled here); -kind is the same
// Kind cluster config alone plus the containerd patch ctlptl adds to use a
// local registry, for creating the cluster by script when ctlptl is missing;
// -summary lists the registry, cluster name and nodes that both paths must yield.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// registryPatch is what ctlptl adds to a Kind cluster that has a registry, so
// containerd reads /etc/containerd/certs.d/<host>/hosts.toml.
const registryPatch = "[plugins.\"io.containerd.grpc.v1.cri\".registry]\n  config_path = \"/etc/containerd/certs.d\"\n"

type summary struct {
	Cluster      string            `json:"cluster"`
	Context      string            `json:"context"`
	Registry     string            `json:"registry"`
	RegistryPort int               `json:"registryPort"`
	Nodes        []node            `json:"nodes"`
	PortMappings map[string]string `json:"portMappings"`
}

type node struct {
	Role   string            `json:"role"`
	Labels map[string]string `json:"labels,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "kindcfg:", err)
		os.Exit(1)
	}
}

func run() error {
	in := flag.String("in", "ctlptl.yaml", "ctlptl file")
	image := flag.String("image", "", "node image for every node")
	outCtlptl := flag.String("ctlptl", "", "write the ctlptl file with the node image here")
	outKind := flag.String("kind", "", "write the Kind cluster config (with the registry patch) here")
	outSummary := flag.String("summary", "", "write the expected cluster summary (JSON) here")
	flag.Parse()
	if *image == "" {
		return errors.New("-image is required")
	}
	raw, err := os.ReadFile(*in)
	if err != nil {
		return err
	}
	var docs []map[string]any
	var cluster map[string]any
	var sum summary
	for _, d := range strings.Split("\n"+string(raw), "\n---") {
		if strings.TrimSpace(d) == "" {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal([]byte(d), &m); err != nil {
			return fmt.Errorf("%s: %w", *in, err)
		}
		if m == nil {
			continue
		}
		switch m["kind"] {
		case "Registry":
			sum.Registry, _ = m["name"].(string)
			if p, ok := m["port"].(float64); ok {
				sum.RegistryPort = int(p)
			}
		case "Cluster":
			cluster = m
		}
		docs = append(docs, m)
	}
	if cluster == nil {
		return fmt.Errorf("%s: no Cluster", *in)
	}
	if cluster["product"] != "kind" {
		return fmt.Errorf("%s: cluster product %v, want kind", *in, cluster["product"])
	}
	sum.Context, _ = cluster["name"].(string)
	kc, ok := cluster["kindV1Alpha4Cluster"].(map[string]any)
	if !ok {
		return fmt.Errorf("%s: no kindV1Alpha4Cluster", *in)
	}
	sum.Cluster, _ = kc["name"].(string)
	if "kind-"+sum.Cluster != sum.Context {
		return fmt.Errorf("%s: cluster name %q and Kind name %q disagree", *in, sum.Context, sum.Cluster)
	}
	nodes, _ := kc["nodes"].([]any)
	sum.PortMappings = map[string]string{}
	for _, n := range nodes {
		nm, ok := n.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: node is %T", *in, n)
		}
		nm["image"] = *image
		nd := node{Role: fmt.Sprint(nm["role"])}
		if l, ok := nm["labels"].(map[string]any); ok {
			nd.Labels = map[string]string{}
			for k, v := range l {
				nd.Labels[k] = fmt.Sprint(v)
			}
		}
		sum.Nodes = append(sum.Nodes, nd)
		pms, _ := nm["extraPortMappings"].([]any)
		for _, pm := range pms {
			p, _ := pm.(map[string]any)
			sum.PortMappings[fmt.Sprintf("%v:%v", p["listenAddress"], p["hostPort"])] = fmt.Sprint(p["containerPort"])
		}
	}
	if *outCtlptl != "" {
		var buf bytes.Buffer
		for i, d := range docs {
			b, err := yaml.Marshal(d)
			if err != nil {
				return err
			}
			if i > 0 {
				buf.WriteString("---\n")
			}
			buf.Write(b)
		}
		if err := os.WriteFile(*outCtlptl, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if *outKind != "" {
		if sum.Registry != "" {
			patches, _ := kc["containerdConfigPatches"].([]any)
			kc["containerdConfigPatches"] = append(patches, registryPatch)
		}
		b, err := yaml.Marshal(kc)
		if err != nil {
			return err
		}
		if err := os.WriteFile(*outKind, b, 0o644); err != nil {
			return err
		}
	}
	if *outSummary != "" {
		b, err := json.MarshalIndent(sum, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(*outSummary, append(b, '\n'), 0o644)
	}
	return nil
}
