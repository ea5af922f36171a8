// Package archtest checks the architecture's import rule
// (docs/architecture.md): shared imports no service; a service imports
// shared, its own packages and, for the catalog's cache contract, only the
// catalog's client package (catalog/catalogclient); services talk through
// the generated clients in shared/gen.
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

// contract is the one package of a service other services may import: the
// catalog's client package (its revision watch and revision-validated cache).
const contract = modulePrefix + "catalog/catalogclient"

// allowed reports whether a package of part from may import path, a
// package of part to.
func allowed(from, to, path string) bool {
	switch {
	case to == "" || to == from || to == "shared":
		return true
	case from == "shared":
		return false
	default:
		return path == contract
	}
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
			if to := partOf(imp); !allowed(from, to, imp) {
				t.Errorf("%s imports %s: %s may import only itself, shared and %s", pkg, imp, from, contract)
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
		from, path string
		want       bool
	}{
		{"catalog", "github.com/carbuild/carbuild/shared/config", true},
		{"catalog", "github.com/carbuild/carbuild/catalog/internal/store", true},
		{"catalog", "github.com/jackc/pgx/v5", true},
		{"catalog", "github.com/carbuild/carbuild/pricing/internal/quote", false},
		{"gateway", contract, true},
		{"pricing", contract, true},
		{"gateway", "github.com/carbuild/carbuild/catalog/internal/cache", false},
		{"pricing", "github.com/carbuild/carbuild/catalog/internal/server", false},
		{"pricing", "github.com/carbuild/carbuild/gateway/internal/rest", false},
		{"gateway", "github.com/carbuild/carbuild/catalog/catalogclient/sub", false},
		{"shared", contract, false},
		{"shared", "github.com/carbuild/carbuild/catalog/internal/store", false},
		{"shared", "github.com/carbuild/carbuild/shared/gen/carbuild/catalog/v1", true},
	}
	for _, tt := range tests {
		if got := allowed(tt.from, partOf(tt.path), tt.path); got != tt.want {
			t.Errorf("allowed(%q, %q) = %v, want %v", tt.from, tt.path, got, tt.want)
		}
	}
}
