package proof

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
)

var (
	renderOnce sync.Map // overlay -> func() (*Objects, []Doc, error)
)

type rendered struct {
	docs []Doc
	objs *Objects
	errs []error
}

// render renders and decodes an overlay once per test binary.
func render(t *testing.T, overlay string) rendered {
	t.Helper()
	f, _ := renderOnce.LoadOrStore(overlay, sync.OnceValue(func() rendered {
		docs, err := RenderOverlay(overlay)
		if err != nil {
			return rendered{errs: []error{err}}
		}
		objs, errs := Decode(docs)
		return rendered{docs: docs, objs: objs, errs: errs}
	}))
	r := f.(func() rendered)()
	if r.objs == nil {
		t.Fatalf("render %s: %v", overlay, r.errs)
	}
	return r
}

func report(t *testing.T, what string, errs []error) {
	t.Helper()
	for _, err := range errs {
		t.Errorf("%s: %v", what, err)
	}
}

func TestOverlayDirectoriesAreTheKnownOverlays(t *testing.T) {
	entries, err := os.ReadDir(filepath.Join(RepoRoot(), "k8s", "overlays"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if e.IsDir() {
			got = append(got, e.Name())
		}
	}
	want := slices.Clone(Overlays)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("k8s/overlays holds %v, want %v (update Overlays and the checks)", got, want)
	}
}

func TestOverlays(t *testing.T) {
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			t.Parallel()
			r := render(t, overlay)
			report(t, "strict decode", r.errs)
			if len(r.objs.All) != len(r.docs) {
				t.Errorf("decoded %d of %d objects", len(r.objs.All), len(r.docs))
			}
			report(t, "selectors", CheckSelectors(r.objs))
			report(t, "pods", CheckPods(r.objs, WritableRoot[overlay]))
			report(t, "namespace", CheckNamespace(r.objs))
			report(t, "network policies", CheckNetworkPolicies(r.objs))
			report(t, "overlay", CheckOverlay(overlay, r.objs))
			report(t, "references", CheckReferences(r.objs))
			report(t, "images", CheckImages(r.objs))
			report(t, "pod security", CheckPodSecurity(r.objs))
			report(t, "binaries", CheckBinaries(r.objs, binaries(t)))
			report(t, "database roles", CheckDatabaseRoles(r.objs))
		})
	}
}
