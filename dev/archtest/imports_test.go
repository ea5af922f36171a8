// Package archtest checks the architecture's import rule
// (docs/architecture.md): shared imports no service, and no service imports
// another service's packages; services talk through the generated clients in
// shared/gen.
package archtest

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

const modulePrefix = "github.com/carbuild/carbuild/"

// parts are the workspace modules the rule governs.
var parts = []string{"shared", "catalog", "pricing", "gateway"}

// partOf names the part an import path belongs to, or "" for a path outside them.
func partOf(path string) string {
	rest, ok := strings.CutPrefix(path, modulePrefix)
	if !ok {
		return ""
	}
	head, _, _ := strings.Cut(rest, "/")
	for _, p := range parts {
		if head == p {
			return p
		}
	}
	return ""
}

// allowed reports whether part from may import part to.
func allowed(from, to string) bool {
	return to == "" || to == from || to == "shared"
}

func TestImportRule(t *testing.T) {
	patterns := make([]string, 0, len(parts))
	for _, p := range parts {
		patterns = append(patterns, modulePrefix+p+"/...")
	}
	args := append([]string{"list", "-test", "-f", `{{.ImportPath}} {{join .Imports " "}} {{join .TestImports " "}} {{join .XTestImports " "}}`}, patterns...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	packages := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := fields[0] // a test variant's "[pkg.test]" suffix is the next field
		from := partOf(pkg)
		if from == "" {
			continue
		}
		packages++
		for _, imp := range fields[1:] {
			if to := partOf(imp); !allowed(from, to) {
				t.Errorf("%s imports %s: %s may import only itself and shared", pkg, imp, from)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if packages < 20 {
		t.Fatalf("checked %d packages, want every package of %v (go list output changed?)", packages, parts)
	}
	t.Logf("checked %d packages of %v", packages, parts)
}

func TestAllowed(t *testing.T) {
	tests := []struct {
		from, to string
		want     bool
	}{
		{"catalog", "shared", true},
		{"catalog", "catalog", true},
		{"catalog", "", true},
		{"catalog", "pricing", false},
		{"gateway", "catalog", false},
		{"pricing", "gateway", false},
		{"shared", "catalog", false},
		{"shared", "shared", true},
	}
	for _, tt := range tests {
		if got := allowed(tt.from, tt.to); got != tt.want {
			t.Errorf("allowed(%q, %q) = %v, want %v", tt.from, tt.to, got, tt.want)
		}
	}
}
