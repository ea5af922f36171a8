package proof

import (
	"context"
	"os"
	"sync"
	"testing"
)

var buildOnce = sync.OnceValues(func() (map[string]*Binary, error) {
	dir, err := os.MkdirTemp("", "k8s-proof-bin-")
	if err != nil {
		return nil, err
	}
	binDir = dir
	return BuildBinaries(context.Background(), RepoRoot(), dir)
})

var binDir string

// binaries builds the four services once per test binary.
func binaries(t *testing.T) map[string]*Binary {
	t.Helper()
	bins, err := buildOnce()
	if err != nil {
		t.Fatalf("building the services as the Dockerfile does: %v", err)
	}
	return bins
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func TestBinariesPrintFlagsWithEnv(t *testing.T) {
	for name, b := range binaries(t) {
		for _, f := range b.Flags {
			t.Logf("%s: -%s %s env %s default %q", name, f.Name, f.Type, f.Env, f.Default)
		}
	}
}
