package proof

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// ServicePackages maps each image (carbuild/NAME, Dockerfile SERVICE) to its
// main package, relative to the repository root.
var ServicePackages = map[string]string{
	"catalog": "./catalog/cmd/catalog",
	"pricing": "./pricing/cmd/pricing",
	"gateway": "./gateway/cmd/gateway",
	"migrate": "./migrations/cmd/migrate",
}

// Flag is one command-line flag as a binary's -h prints it.
type Flag struct {
	Name, Type, Env, Default, Usage string
}

// Binary is a built program and the flags it accepts.
type Binary struct {
	Name  string
	Path  string
	Help  string
	Flags map[string]Flag // by flag name
}

// Env returns the flag read from environment variable env.
func (b *Binary) Env(env string) (Flag, bool) {
	for _, f := range b.Flags {
		if f.Env == env {
			return f, true
		}
	}
	return Flag{}, false
}

// BuildBinaries builds every service the way the root Dockerfile's builder
// stage does: from a copy of what its COPY instructions take from the
// repository (after .dockerignore), in workspace mode, CGO_ENABLED=0,
// -trimpath. So a module missing from the Dockerfile or a file hidden by
// .dockerignore fails here too.
func BuildBinaries(ctx context.Context, root, outDir string) (map[string]*Binary, error) {
	f, err := os.Open(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	df, err := ParseDockerfile(f)
	if err != nil {
		return nil, fmt.Errorf("Dockerfile: %w", err)
	}
	builder := df.Stage("builder")
	if builder == nil {
		return nil, fmt.Errorf("Dockerfile: no builder stage")
	}
	src := filepath.Join(outDir, "context")
	if err := BuildContext(root, builder, src); err != nil {
		return nil, fmt.Errorf("Dockerfile builder context: %w", err)
	}
	workdir := "/"
	for _, in := range builder.Find("WORKDIR") {
		workdir = filepath.Join(workdir, in.Args[0])
	}
	srcRoot := filepath.Join(src, workdir)
	// Built binaries are kept per hash of the exact build input (the copied
	// context, the Go version, the commands), so a warm run skips the build.
	key, err := contextHash(ctx, src)
	if err != nil {
		return nil, err
	}
	cacheDir := ""
	if base, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(base, "carbuild-k8s-proof", key)
	}
	if cacheDir != "" {
		if bins, err := loadBinaries(ctx, cacheDir); err == nil {
			return bins, nil
		}
	}

	// The builder's workspace steps, as the Dockerfile runs them.
	for _, in := range builder.Find("RUN") {
		var args []string
		switch {
		case in.Line == "go work use -r .":
			args = []string{"work", "use", "-r", "."}
		case strings.HasSuffix(in.Line, "go mod download"):
			args = []string{"mod", "download"}
		default:
			continue
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = srcRoot
		cmd.Env = append(os.Environ(), "GOWORK=")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("Dockerfile RUN %s: %w\n%s", in.Line, err, out)
		}
	}
	bins := map[string]*Binary{}
	var args []string
	for name, pkg := range ServicePackages {
		args = append(args, pkg)
		bins[name] = &Binary{Name: name, Path: filepath.Join(outDir, "bin", name)}
	}
	// One go build per package; go builds them in parallel internally when asked
	// for several, but -o with several packages needs a directory and names the
	// binaries after the package directories, which is what we want.
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-trimpath", "-o", filepath.Join(outDir, "bin") + "/"}, args...)...)
	cmd.Dir = srcRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=", "GOFLAGS=-mod=readonly -buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build in the Dockerfile's context: %w\n%s", err, stderr.String())
	}
	for name, b := range bins {
		// -o DIR/ names each binary after its package directory's last element.
		built := filepath.Join(outDir, "bin", filepath.Base(ServicePackages[name]))
		if built != b.Path {
			if err := os.Rename(built, b.Path); err != nil {
				return nil, err
			}
		}
		if err := b.readHelp(ctx); err != nil {
			return nil, err
		}
	}
	if cacheDir != "" {
		// Best effort: a failed save only costs the next run a build. Only the
		// newest build is kept.
		if old, err := os.ReadDir(filepath.Dir(cacheDir)); err == nil {
			for _, e := range old {
				if e.Name() != key {
					_ = os.RemoveAll(filepath.Join(filepath.Dir(cacheDir), e.Name()))
				}
			}
		}
		if err := os.MkdirAll(cacheDir, 0o755); err == nil {
			for name, b := range bins {
				if data, err := os.ReadFile(b.Path); err == nil {
					_ = os.WriteFile(filepath.Join(cacheDir, name+".tmp"), data, 0o755)
					_ = os.Rename(filepath.Join(cacheDir, name+".tmp"), filepath.Join(cacheDir, name))
				}
			}
		}
	}
	return bins, nil
}

// loadBinaries uses binaries cached by an earlier run.
func loadBinaries(ctx context.Context, dir string) (map[string]*Binary, error) {
	bins := map[string]*Binary{}
	for name := range ServicePackages {
		b := &Binary{Name: name, Path: filepath.Join(dir, name)}
		if _, err := os.Stat(b.Path); err != nil {
			return nil, err
		}
		if err := b.readHelp(ctx); err != nil {
			return nil, err
		}
		bins[name] = b
	}
	return bins, nil
}

// contextHash hashes every file of the build context with its path, plus the
// Go version and this package's build commands.
func contextHash(ctx context.Context, dir string) (string, error) {
	h := sha256.New()
	ver, err := exec.CommandContext(ctx, "go", "env", "GOVERSION", "GOOS", "GOARCH").Output()
	if err != nil {
		return "", fmt.Errorf("go env: %w", err)
	}
	fmt.Fprintf(h, "%s\nbuild -trimpath CGO_ENABLED=0 v1\n", ver)
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(h, "%s %d\n", rel, len(data))
		h.Write(data)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:32], err
}

func (b *Binary) readHelp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.Path, "-h")
	cmd.Env = []string{"PATH=/usr/bin:/bin"} // no inherited settings
	out, _ := cmd.CombinedOutput()           // -h may exit 0 or 2
	b.Help = string(out)
	b.Flags = ParseHelp(b.Help)
	if len(b.Flags) == 0 {
		return fmt.Errorf("%s -h printed no flags:\n%s", b.Name, out)
	}
	for _, f := range b.Flags {
		if f.Env == "" {
			return fmt.Errorf("%s -h: flag -%s names no environment variable ((env NAME) missing)", b.Name, f.Name)
		}
	}
	return nil
}

var (
	flagLine  = regexp.MustCompile(`^  -([A-Za-z0-9][\w.-]*)(?: (\w+))?(?:\t(.*))?$`)
	envRe     = regexp.MustCompile(`\(env ([A-Z][A-Z0-9_]*)\)`)
	defaultRe = regexp.MustCompile(`\(default (.*)\)\s*$`)
)

// ParseHelp reads the flags from Go flag package usage output, where each flag
// is "  -name type" followed by indented usage lines that name its
// environment variable as "(env NAME)" and may end with "(default VALUE)".
func ParseHelp(help string) map[string]Flag {
	flags := map[string]Flag{}
	var cur *Flag
	flush := func() {
		if cur == nil {
			return
		}
		u := strings.TrimSpace(cur.Usage)
		if m := envRe.FindStringSubmatch(u); m != nil {
			cur.Env = m[1]
		}
		if m := defaultRe.FindStringSubmatch(u); m != nil {
			cur.Default = strings.Trim(m[1], `"`)
		}
		flags[cur.Name] = *cur
		cur = nil
	}
	for _, line := range strings.Split(help, "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flush()
			cur = &Flag{Name: m[1], Type: m[2], Usage: m[3]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    ") {
			cur.Usage += " " + strings.TrimSpace(line)
			continue
		}
		flush()
	}
	flush()
	return flags
}
