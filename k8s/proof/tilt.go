package proof

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.starlark.net/starlark"
	"go.starlark.net/starlarkstruct"
	"go.starlark.net/syntax"
)

// TiltCall is one recorded call of a Tilt builtin.
type TiltCall struct {
	Fn     string
	Args   []starlark.Value
	Kwargs map[string]starlark.Value
}

// Str returns positional argument i or keyword name as a Go string.
func (c TiltCall) Str(i int, name string) string {
	v := c.Arg(i, name)
	if s, ok := v.(starlark.String); ok {
		return string(s)
	}
	return ""
}

// Arg returns positional argument i or keyword name, or nil.
func (c TiltCall) Arg(i int, name string) starlark.Value {
	if i >= 0 && i < len(c.Args) {
		return c.Args[i]
	}
	return c.Kwargs[name]
}

// Strings returns a list argument of strings.
func (c TiltCall) Strings(i int, name string) []string {
	l, _ := c.Arg(i, name).(*starlark.List)
	var out []string
	if l == nil {
		return nil
	}
	for j := 0; j < l.Len(); j++ {
		if s, ok := l.Index(j).(starlark.String); ok {
			out = append(out, string(s))
		} else if st, ok := l.Index(j).(*tiltValue); ok {
			out = append(out, st.String())
		}
	}
	return out
}

// Values returns a list argument's elements.
func (c TiltCall) Values(i int, name string) []starlark.Value {
	l, _ := c.Arg(i, name).(*starlark.List)
	if l == nil {
		return nil
	}
	var out []starlark.Value
	for j := 0; j < l.Len(); j++ {
		out = append(out, l.Index(j))
	}
	return out
}

// tiltValue is what a stub returns for sync(), run(), link(), port_forward()
// and kustomize(): the call itself, inspectable later.
type tiltValue struct{ call TiltCall }

func (v *tiltValue) String() string        { return v.call.Fn + "(...)" }
func (v *tiltValue) Type() string          { return v.call.Fn }
func (v *tiltValue) Freeze()               {}
func (v *tiltValue) Truth() starlark.Bool  { return true }
func (v *tiltValue) Hash() (uint32, error) { return 0, fmt.Errorf("unhashable") }

// TiltRun is the record of one Tiltfile evaluation.
type TiltRun struct {
	Calls   []TiltCall
	Globals starlark.StringDict
	Locals  []string // commands passed to local()
}

// Find returns the calls of one builtin.
func (r *TiltRun) Find(fn string) []TiltCall {
	var out []TiltCall
	for _, c := range r.Calls {
		if c.Fn == fn {
			out = append(out, c)
		}
	}
	return out
}

// tiltParams lists the parameters of each Tilt builtin the stubs accept
// (from Tilt's API reference); an unknown keyword fails like in Tilt.
var tiltParams = map[string][]string{
	"docker_build": {"ref", "context", "build_args", "dockerfile", "dockerfile_contents", "live_update", "match_in_env_vars",
		"ignore", "only", "entrypoint", "target", "ssh", "network", "secret", "extra_tag", "container_args", "cache_from",
		"pull", "platform", "extra_hosts"},
	"local_resource": {"name", "cmd", "deps", "trigger_mode", "resource_deps", "ignore", "auto_init", "serve_cmd", "cmd_bat",
		"serve_cmd_bat", "allow_parallel", "links", "tags", "env", "serve_env", "readiness_probe", "dir", "serve_dir", "labels"},
	"k8s_resource": {"workload", "new_name", "port_forwards", "extra_pod_selectors", "trigger_mode", "resource_deps", "objects",
		"auto_init", "links", "labels", "discovery_strategy", "pod_readiness"},
	"k8s_yaml":      {"yaml", "allow_duplicates"},
	"kustomize":     {"pathToDir", "kustomize_bin", "flags"},
	"sync":          {"local_path", "remote_path"},
	"run":           {"cmd", "trigger", "echo_off"},
	"link":          {"url", "name"},
	"port_forward":  {"local_port", "container_port", "name", "link_path", "host"},
	"local":         {"command", "quiet", "command_bat", "echo_off", "env", "dir", "stdin"},
	"k8s_context":   {},
	"define_string": {"name", "args", "usage"},
	"parse":         {},
}

// StubArch is what the stubbed local() answers: a value no Tiltfile could
// hard-code, so finding it in a command proves the command used local().
const StubArch = "stubarch"

// EvalTiltfile runs the Tiltfile with stub builtins that record every call.
// args are the values config.parse() returns (user arguments after --).
func EvalTiltfile(src []byte, args map[string]string) (*TiltRun, error) {
	run := &TiltRun{}
	record := func(fn string, ret func(TiltCall) starlark.Value) *starlark.Builtin {
		return starlark.NewBuiltin(fn, func(th *starlark.Thread, b *starlark.Builtin, a starlark.Tuple, kw []starlark.Tuple) (starlark.Value, error) {
			params := tiltParams[fn]
			if len(a) > len(params) {
				return nil, fmt.Errorf("%s: %d positional arguments, at most %d", fn, len(a), len(params))
			}
			c := TiltCall{Fn: fn, Args: a, Kwargs: map[string]starlark.Value{}}
			for _, kv := range kw {
				k := string(kv[0].(starlark.String))
				i := slices.Index(params, k)
				if i < 0 {
					return nil, fmt.Errorf("%s: unexpected keyword argument %q", fn, k)
				}
				if i < len(a) {
					return nil, fmt.Errorf("%s: %q given twice", fn, k)
				}
				c.Kwargs[k] = kv[1]
			}
			run.Calls = append(run.Calls, c)
			if ret != nil {
				return ret(c), nil
			}
			return starlark.None, nil
		})
	}
	self := func(c TiltCall) starlark.Value { return &tiltValue{c} }
	parsed := starlark.NewDict(len(args))
	for k, v := range args {
		_ = parsed.SetKey(starlark.String(k), starlark.String(v))
	}
	predeclared := starlark.StringDict{
		"config": &starlarkstruct.Module{Name: "config", Members: starlark.StringDict{
			"define_string": record("define_string", nil),
			"parse":         record("parse", func(TiltCall) starlark.Value { return parsed }),
		}},
		"docker_build":   record("docker_build", nil),
		"local_resource": record("local_resource", nil),
		"k8s_resource":   record("k8s_resource", nil),
		"k8s_yaml":       record("k8s_yaml", nil),
		"kustomize":      record("kustomize", self),
		"sync":           record("sync", self),
		"run":            record("run", self),
		"link":           record("link", self),
		"port_forward":   record("port_forward", self),
		"k8s_context":    record("k8s_context", func(TiltCall) starlark.Value { return starlark.String("kind-carbuild") }),
		"local": record("local", func(c TiltCall) starlark.Value {
			cmd := c.Str(0, "command")
			run.Locals = append(run.Locals, cmd)
			if strings.Contains(cmd, "go env GOARCH") {
				return starlark.String(StubArch + "\n")
			}
			return starlark.String("") // as if the cluster did not answer yet
		}),
		"TRIGGER_MODE_AUTO":   starlark.MakeInt(0),
		"TRIGGER_MODE_MANUAL": starlark.MakeInt(1),
	}
	th := &starlark.Thread{Name: "Tiltfile"}
	opts := &syntax.FileOptions{Set: true, While: true, TopLevelControl: true, GlobalReassign: true, Recursion: true}
	g, err := starlark.ExecFileOptions(opts, th, "Tiltfile", src, predeclared)
	run.Globals = g
	if err != nil {
		if ee, ok := err.(*starlark.EvalError); ok {
			return run, fmt.Errorf("%s", ee.Backtrace())
		}
		return run, err
	}
	return run, nil
}

// TiltContext is what the Tiltfile is checked against for one overlay.
type TiltContext struct {
	Root      string
	Overlay   string
	Objects   *Objects
	HostPorts []int32 // ports ctlptl.yaml publishes on the host
}

// CheckTiltRun checks the recorded calls of one evaluation against the
// repository and the rendered overlay.
func CheckTiltRun(r *TiltRun, tc TiltContext) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	exists := func(rel string) bool {
		_, err := os.Stat(filepath.Join(tc.Root, filepath.FromSlash(rel)))
		return err == nil
	}

	// Overlay choice.
	ks := r.Find("kustomize")
	if len(ks) != 1 || ks[0].Str(0, "pathToDir") != "k8s/overlays/"+tc.Overlay {
		bad("want one kustomize(\"k8s/overlays/%s\"), got %d calls", tc.Overlay, len(ks))
	}
	for _, k := range ks {
		if p := k.Str(0, "pathToDir"); !exists(p + "/kustomization.yaml") {
			bad("kustomize(%q): no kustomization.yaml there", p)
		}
	}
	if n := len(r.Find("k8s_yaml")); n != 1 {
		bad("want one k8s_yaml call, got %d", n)
	}

	// Resources by name.
	resources := map[string]TiltCall{}
	workloads := map[string]Workload{}
	for _, w := range tc.Objects.Workloads() {
		workloads[w.Name] = w
	}
	outputs := map[string]bool{} // files local_resources build
	for _, c := range r.Find("local_resource") {
		name := c.Str(0, "name")
		if _, dup := resources[name]; dup {
			bad("local_resource %q defined twice", name)
		}
		resources[name] = c
		cmd := c.Str(1, "cmd")
		for _, d := range c.Strings(2, "deps") {
			if !exists(d) {
				bad("local_resource %q: dep %q does not exist", name, d)
			}
		}
		if strings.Contains(cmd, "go build") {
			errs = append(errs, checkCompile(name, cmd, tc.Root)...)
			f := strings.Fields(cmd)
			if i := slices.Index(f, "-o"); i >= 0 && i+1 < len(f) {
				outputs[f[i+1]] = true
			}
			continue
		}
		// Anything else is a button: manual, not run at start.
		if tm, _ := c.Arg(-1, "trigger_mode").(starlark.Int); tm.String() != "1" {
			bad("local_resource %q: want trigger_mode=TRIGGER_MODE_MANUAL", name)
		}
		if ai, ok := c.Arg(-1, "auto_init").(starlark.Bool); !ok || bool(ai) {
			bad("local_resource %q: want auto_init=False", name)
		}
		errs = append(errs, checkCommandPaths(name, cmd, tc.Root)...)
	}

	// Images: exactly the carbuild/ images the overlay uses.
	used := map[string]bool{}
	for _, w := range workloads {
		for _, c := range append(slices.Clone(w.Template.Spec.InitContainers), w.Template.Spec.Containers...) {
			if strings.HasPrefix(c.Image, ImagePrefix) {
				used[c.Image] = true
			}
		}
	}
	built := map[string]bool{}
	for _, c := range r.Find("docker_build") {
		ref := c.Str(0, "ref")
		built[ref] = true
		if !used[ref] {
			bad("docker_build(%q): no workload of overlay %s uses it", ref, tc.Overlay)
		}
		if ctx := c.Str(1, "context"); !exists(ctx) {
			bad("docker_build(%q): context %q does not exist", ref, ctx)
		}
		df := c.Str(-1, "dockerfile")
		if df == "" {
			df = "Dockerfile"
		}
		if !exists(df) {
			bad("docker_build(%q): dockerfile %q does not exist", ref, df)
		}
		only := c.Strings(-1, "only")
		for _, o := range only {
			if !exists(o) && !outputs[o] {
				bad("docker_build(%q): only %q neither exists nor is built by a local_resource", ref, o)
			}
		}
		svc := strings.TrimPrefix(ref, ImagePrefix)
		if ba, ok := c.Arg(-1, "build_args").(*starlark.Dict); ok {
			v, _, _ := ba.Get(starlark.String("SERVICE"))
			if s, _ := v.(starlark.String); string(s) != svc {
				bad("docker_build(%q): build arg SERVICE=%v, want %q", ref, v, svc)
			}
		}
		if !outputs["build/"+svc] || !slices.Contains(only, "build/"+svc) {
			bad("docker_build(%q): want the host-built binary build/%s in only", ref, svc)
		}
		steps := c.Values(-1, "live_update")
		live := slices.Contains(WritableRoot[tc.Overlay], svc)
		if live != (len(steps) > 0) {
			bad("docker_build(%q): live_update steps %d, but overlay %s writable root for it is %v", ref, len(steps), tc.Overlay, live)
		}
		for _, s := range steps {
			tv, ok := s.(*tiltValue)
			if !ok {
				bad("docker_build(%q): live_update step %v is not sync() or run()", ref, s)
				continue
			}
			switch tv.call.Fn {
			case "sync":
				if src := tv.call.Str(0, "local_path"); !slices.Contains(only, src) {
					bad("docker_build(%q): sync source %q is not in only", ref, src)
				}
				if dst := tv.call.Str(1, "remote_path"); dst != TiltBinaryPath {
					bad("docker_build(%q): sync to %q, but the image runs %s", ref, dst, TiltBinaryPath)
				}
			case "run":
				if cmd := tv.call.Str(0, "cmd"); cmd != "kill -HUP 1" {
					bad("docker_build(%q): run(%q), want the restart.sh signal \"kill -HUP 1\"", ref, cmd)
				}
			default:
				bad("docker_build(%q): unexpected live_update step %s", ref, tv.call.Fn)
			}
		}
	}
	for img := range used {
		if !built[img] {
			bad("overlay %s uses image %s, which the Tiltfile does not build", tc.Overlay, img)
		}
	}

	// k8s_resource: every workload once, with a label, known dependencies.
	seen := map[string]bool{}
	usedPorts := map[int32]string{}
	for _, p := range tc.HostPorts {
		usedPorts[p] = "ctlptl.yaml host port mapping"
	}
	for _, c := range r.Find("k8s_resource") {
		name := c.Str(0, "workload")
		w, ok := workloads[name]
		if !ok {
			bad("k8s_resource(%q): overlay %s has no such workload", name, tc.Overlay)
			continue
		}
		seen[name] = true
		if len(c.Strings(-1, "labels")) == 0 {
			bad("k8s_resource(%q): no labels", name)
		}
		for _, pf := range c.Values(-1, "port_forwards") {
			tv, ok := pf.(*tiltValue)
			if !ok || tv.call.Fn != "port_forward" {
				bad("k8s_resource(%q): port_forwards entry %v is not port_forward()", name, pf)
				continue
			}
			local, _ := starlark.AsInt32(tv.call.Arg(0, "local_port"))
			container := local
			if v := tv.call.Arg(1, "container_port"); v != nil && v != starlark.None {
				container, _ = starlark.AsInt32(v)
			}
			if !declaresPort(w.Template, int32(container)) {
				bad("k8s_resource(%q): port_forward to %d, which no container declares", name, container)
			}
			if other, taken := usedPorts[int32(local)]; taken {
				bad("k8s_resource(%q): local port %d is already taken by %s", name, local, other)
			}
			usedPorts[int32(local)] = name
		}
	}
	for name := range workloads {
		if !seen[name] {
			bad("workload %s of overlay %s has no k8s_resource (labels, dependencies)", name, tc.Overlay)
		}
	}
	known := func(n string) bool { _, lr := resources[n]; return lr || seen[n] }
	for _, c := range append(r.Find("k8s_resource"), r.Find("local_resource")...) {
		name := c.Str(0, "workload")
		if c.Fn == "local_resource" {
			name = c.Str(0, "name")
		}
		for _, d := range c.Strings(-1, "resource_deps") {
			if !known(d) {
				bad("%s(%q): resource_deps names unknown resource %q", c.Fn, name, d)
			}
		}
	}
	return errs
}

// TiltBinaryPath is where k8s/image/Dockerfile.tilt puts the binary.
const TiltBinaryPath = "/app/server"

// checkCompile checks a host compile command: static, Linux, GOARCH from
// local() (never hard-coded), output in build/, package a real main package.
func checkCompile(name, cmd, root string) []error {
	var errs []error
	f := strings.Fields(cmd)
	for _, want := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + StubArch} {
		if !slices.Contains(f, want) {
			errs = append(errs, fmt.Errorf("local_resource %q: %q lacks %s (GOARCH must come from the host or cluster)", name, cmd, want))
		}
	}
	i := slices.Index(f, "-o")
	if i < 0 || i+2 >= len(f) || !strings.HasPrefix(f[i+1], "build/") {
		return append(errs, fmt.Errorf("local_resource %q: want go build -o build/NAME PKG", name))
	}
	svc := strings.TrimPrefix(f[i+1], "build/")
	pkg := f[i+2]
	if want := ServicePackages[svc]; pkg != want {
		errs = append(errs, fmt.Errorf("local_resource %q: builds %s from %s, want %s", name, svc, pkg, want))
	}
	if m, _ := filepath.Glob(filepath.Join(root, pkg, "*.go")); len(m) == 0 {
		errs = append(errs, fmt.Errorf("local_resource %q: package %s has no Go files", name, pkg))
	}
	return errs
}

// checkCommandPaths checks the files a button's command names: make targets
// exist in the Makefile, -f files and cd directories exist.
func checkCommandPaths(name, cmd, root string) []error {
	var errs []error
	f := strings.Fields(cmd)
	for i, w := range f {
		switch {
		case w == "make" && i+1 < len(f):
			mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
			if err != nil || !hasMakeTarget(string(mk), f[i+1]) {
				errs = append(errs, fmt.Errorf("local_resource %q: make target %q is not in the Makefile", name, f[i+1]))
			}
		case (w == "-f" || w == "cd") && i+1 < len(f):
			if _, err := os.Stat(filepath.Join(root, f[i+1])); err != nil {
				errs = append(errs, fmt.Errorf("local_resource %q: %s %s does not exist", name, w, f[i+1]))
			}
		}
	}
	return errs
}

func hasMakeTarget(mk, target string) bool {
	for _, l := range strings.Split(mk, "\n") {
		head, _, ok := strings.Cut(l, ":")
		if ok && !strings.HasPrefix(l, "\t") && slices.Contains(strings.Fields(head), target) {
			return true
		}
	}
	return false
}

// TiltOverlays reads the OVERLAYS list the Tiltfile declares.
func TiltOverlays(r *TiltRun) []string {
	l, _ := r.Globals["OVERLAYS"].(*starlark.List)
	var out []string
	for i := 0; l != nil && i < l.Len(); i++ {
		out = append(out, strings.Trim(l.Index(i).String(), `"`))
	}
	sort.Strings(out)
	return out
}

// CheckCompileDeps checks that a compile local_resource's deps cover every
// repository directory its main package is built from (go list -deps), so a
// save anywhere in them rebuilds the binary.
func CheckCompileDeps(r *TiltRun, root string) []error {
	var errs []error
	for _, c := range r.Find("local_resource") {
		cmd := c.Str(1, "cmd")
		if !strings.Contains(cmd, "go build") {
			continue
		}
		f := strings.Fields(cmd)
		pkg := f[len(f)-1]
		deps := c.Strings(2, "deps")
		lc := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", pkg)
		lc.Dir = root
		lc.Env = append(os.Environ(), "GOWORK="+filepath.Join(root, "go.work"), "GOFLAGS=-mod=readonly")
		out, err := lc.Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("go list -deps %s: %w", pkg, err))
			continue
		}
		for _, dir := range strings.Fields(string(out)) {
			rel, err := filepath.Rel(root, dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue // module cache
			}
			if !slices.ContainsFunc(deps, func(d string) bool { return rel == d || strings.HasPrefix(rel, d+"/") }) {
				errs = append(errs, fmt.Errorf("local_resource %q: builds from %s, which its deps %v do not watch", c.Str(0, "name"), rel, deps))
			}
		}
	}
	return errs
}
