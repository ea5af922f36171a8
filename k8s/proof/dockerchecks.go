package proof

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// DevEntrypoint is how the dev images start: restart.sh runs the binary and
// restarts it on SIGHUP (Tilt's live update).
const DevEntrypoint = `["/app/restart.sh", "/app/server"]`

// CheckDockerfile checks the root Dockerfile: a cross-compiling builder on
// golang:1.26 with cache mounts, CGO off and GOOS/GOARCH from the target
// platform, the SERVICE → package mapping, every go.work module's go.mod
// copied; a distroless non-root prod target (the default, last stage) and an
// alpine dev target with restart.sh.
func CheckDockerfile(df *Dockerfile, goWork string) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !strings.HasPrefix(df.Syntax, "docker/dockerfile:1") {
		bad("want a # syntax=docker/dockerfile:1 directive (cache mounts), got %q", df.Syntax)
	}
	b := df.Stage("builder")
	if b == nil {
		return append(errs, fmt.Errorf("no builder stage"))
	}
	if b.Base != "golang:1.26" {
		bad("builder FROM %s, want golang:1.26", b.Base)
	}
	if b.Platform != "$BUILDPLATFORM" {
		bad("builder should run on $BUILDPLATFORM and cross-compile, got %q", b.Platform)
	}
	var build *Instruction
	for _, in := range b.Find("RUN") {
		if strings.Contains(in.Line, "go build") {
			build = &in
		}
	}
	if build == nil {
		return append(errs, fmt.Errorf("builder: no RUN with go build"))
	}
	for _, want := range []string{"--mount=type=cache,target=/go/pkg/mod", "--mount=type=cache,target=/root/.cache/go-build"} {
		if !slices.Contains(build.Flags, want) {
			bad("builder go build: missing %s", want)
		}
	}
	env := strings.Join(envOf(b), " ") + " " + build.Line
	for _, want := range []string{"CGO_ENABLED=0", `GOOS="${TARGETOS}"`, `GOARCH="${TARGETARCH`} {
		if !strings.Contains(env, want) {
			bad("builder go build: missing %s", want)
		}
	}
	for svc, pkg := range ServicePackages {
		re := regexp.MustCompile(`(^|[ |])` + svc + `[|)]`)
		if !re.MatchString(build.Line) {
			bad("builder: SERVICE=%s is not handled", svc)
		}
		if svc != "migrate" && !strings.Contains(build.Line, `pkg="./${SERVICE}/cmd/${SERVICE}"`) {
			bad("builder: %s should build %s", svc, pkg)
		}
	}
	if !strings.Contains(build.Line, `pkg="`+ServicePackages["migrate"]+`"`) {
		bad("builder: migrate should build %s", ServicePackages["migrate"])
	}
	copied := map[string]bool{}
	for _, in := range b.Find("COPY") {
		for _, a := range in.Args[:len(in.Args)-1] {
			copied[a] = true
		}
	}
	// The workspace: go.work is copied and pruned to the copied modules, and
	// every service's module is copied whole.
	if !copied["go.work"] {
		bad("builder: go.work is not copied; images must build with the workspace")
	}
	if !slices.ContainsFunc(b.Find("RUN"), func(in Instruction) bool { return in.Line == "go work use -r ." }) {
		bad("builder: want RUN go work use -r . (go.work lists modules the image does not copy: %v)", goWorkModules(goWork))
	}
	for svc, pkg := range ServicePackages {
		mod := strings.Split(strings.TrimPrefix(pkg, "./"), "/")[0]
		for _, want := range []string{mod + "/go.mod", mod + "/", "shared/"} {
			if !copied[want] {
				bad("builder: %s needs COPY %s", svc, want)
			}
		}
	}
	prod := df.Stages[len(df.Stages)-1]
	if prod.Name != "prod" {
		bad("the last (default) stage is %q, want prod", prod.Name)
	}
	if prod.Base != "gcr.io/distroless/static-debian12:nonroot" {
		bad("prod FROM %s, want gcr.io/distroless/static-debian12:nonroot", prod.Base)
	}
	errs = append(errs, checkRuntimeStage(&prod, `["/app/server"]`)...)
	for _, in := range prod.Find("COPY") {
		if !hasFlagPrefix(in, "--from=builder") {
			bad("prod: COPY %s takes more than the binary", in.Line)
		}
	}
	dev := df.Stage("dev")
	if dev == nil {
		return append(errs, fmt.Errorf("no dev stage"))
	}
	if !strings.HasPrefix(dev.Base, "alpine:") && !strings.HasPrefix(dev.Base, "busybox:") {
		bad("dev FROM %s: want a small base with sh and tar (alpine or busybox)", dev.Base)
	}
	errs = append(errs, checkRuntimeStage(dev, DevEntrypoint)...)
	return errs
}

// CheckTiltDockerfile checks k8s/image/Dockerfile.tilt: the host-built
// binary at TiltBinaryPath, restart.sh, non-root, like the dev target.
func CheckTiltDockerfile(df *Dockerfile) []error {
	if len(df.Stages) != 1 {
		return []error{fmt.Errorf("want one stage, got %d", len(df.Stages))}
	}
	st := &df.Stages[0]
	errs := checkRuntimeStage(st, DevEntrypoint)
	ok := false
	for _, in := range st.Find("COPY") {
		if len(in.Args) == 2 && in.Args[0] == "build/${SERVICE}" && in.Args[1] == TiltBinaryPath {
			ok = true
		}
	}
	if !ok {
		errs = append(errs, fmt.Errorf("want COPY build/${SERVICE} %s", TiltBinaryPath))
	}
	return errs
}

func checkRuntimeStage(st *Stage, entrypoint string) []error {
	var errs []error
	if u := st.Last("USER"); u == nil || (u.Line != "65532" && u.Line != "65532:65532") {
		errs = append(errs, fmt.Errorf("stage %s: want USER 65532 (non-root, numeric for runAsNonRoot)", st.Name))
	}
	if e := st.Last("ENTRYPOINT"); e == nil || normalizeJSON(e.Line) != normalizeJSON(entrypoint) {
		errs = append(errs, fmt.Errorf("stage %s: want ENTRYPOINT %s", st.Name, entrypoint))
	}
	return errs
}

func normalizeJSON(s string) string { return strings.Join(strings.Fields(s), "") }

func envOf(st *Stage) []string {
	var out []string
	for _, in := range st.Find("ENV") {
		out = append(out, in.Args...)
	}
	return out
}

// goWorkModules lists the use directives of a go.work file.
func goWorkModules(goWork string) []string {
	var mods []string
	inUse := false
	for _, l := range strings.Split(goWork, "\n") {
		t := strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(t, "use ("):
			inUse = true
		case inUse && t == ")":
			inUse = false
		case inUse && t != "" && !strings.HasPrefix(t, "//"):
			mods = append(mods, strings.TrimPrefix(t, "./"))
		case strings.HasPrefix(t, "use "):
			mods = append(mods, strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(t, "use ")), "./"))
		}
	}
	return mods
}

// readDockerfile parses a repository Dockerfile.
func readDockerfile(root, rel string) (*Dockerfile, error) {
	f, err := os.Open(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseDockerfile(f)
}
