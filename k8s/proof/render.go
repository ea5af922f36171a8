package proof

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Overlays are the kustomize overlays under k8s/overlays. Their paths are
// stable: the real-cluster test (k8s/kind) applies them.
var Overlays = []string{"baseline", "replicated", "spread", "autoscale", "dev", "tls"}

// RepoRoot returns the repository root (two levels above this package).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Doc is one YAML document of a rendered manifest stream.
type Doc struct {
	APIVersion string
	Kind       string
	Name       string
	Namespace  string
	Raw        []byte // the document's YAML
}

func (d Doc) String() string {
	if d.Namespace != "" {
		return fmt.Sprintf("%s %s/%s", d.Kind, d.Namespace, d.Name)
	}
	return fmt.Sprintf("%s %s", d.Kind, d.Name)
}

// Kustomize renders a kustomization directory with the kustomize library
// (sigs.k8s.io/kustomize/api v0.18.0, the kustomize v5.5.0 that kubectl 1.32
// embeds and Tilt's kustomize() runs), with kubectl's defaults: files may be
// loaded only from within each kustomization's root.
func Kustomize(dir string) ([]byte, error) {
	opts := krusty.MakeDefaultOptions()
	opts.LoadRestrictions = types.LoadRestrictionsRootOnly
	opts.Reorder = krusty.ReorderOptionLegacy // kubectl kustomize orders by kind: Namespace first
	m, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize %s: %w", dir, err)
	}
	return m.AsYaml()
}

// RenderOverlay renders k8s/overlays/NAME and splits it into documents.
// The tls overlay's certificates (git-ignored) are made first if missing.
func RenderOverlay(name string) ([]Doc, error) {
	if name == "tls" {
		if err := devCerts(); err != nil {
			return nil, err
		}
	}
	out, err := Kustomize(filepath.Join(RepoRoot(), "k8s", "overlays", name))
	if err != nil {
		return nil, err
	}
	return SplitDocs(out)
}

// devCerts runs dev/cmd/devcerts for the tls overlay; it keeps existing
// files, so it changes nothing once they are there.
func devCerts() error {
	cmd := exec.Command("go", "run", "./dev/cmd/devcerts", "-out", filepath.Join("k8s", "overlays", "tls", "certs"))
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(), "GOWORK=") // the repository's go.work, whatever this test runs with
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("make the tls overlay's certificates: %w\n%s", err, out)
	}
	return nil
}

// SplitDocs splits a multi-document YAML stream and reads each document's
// identity. Empty documents are skipped.
func SplitDocs(stream []byte) ([]Doc, error) {
	var docs []Doc
	var cur []string
	flush := func() error {
		text := strings.Join(cur, "\n")
		cur = cur[:0]
		if strings.TrimSpace(stripComments(text)) == "" {
			return nil
		}
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(text), &meta); err != nil {
			return fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, Doc{
			APIVersion: meta.APIVersion, Kind: meta.Kind,
			Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace,
			Raw: []byte(text + "\n"),
		})
		return nil
	}
	for _, line := range strings.Split(string(stream), "\n") {
		if strings.TrimRight(line, " \t\r") == "---" {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur = append(cur, line)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return docs, nil
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// readFile reads a repository file.
func readFile(rel string) ([]byte, error) {
	return os.ReadFile(filepath.Join(RepoRoot(), rel))
}
