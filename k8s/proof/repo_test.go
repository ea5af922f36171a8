package proof

import (
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func mustRead(t *testing.T, rel string) []byte {
	t.Helper()
	data, err := readFile(rel)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func ctlptl(t *testing.T) *Ctlptl {
	t.Helper()
	c, err := DecodeCtlptl(mustRead(t, "ctlptl.yaml"))
	if err != nil {
		t.Fatalf("ctlptl.yaml: %v", err)
	}
	return c
}

func TestCtlptl(t *testing.T) {
	c := ctlptl(t)
	report(t, "ctlptl.yaml", CheckCtlptl(c))
	// The mapped NodePort is the gateway's in every overlay.
	for _, overlay := range Overlays {
		o := render(t, overlay).objs
		found := false
		for _, s := range o.Services {
			if s.Name == "gateway" {
				for _, p := range s.Spec.Ports {
					found = found || (p.NodePort == GatewayNodePort && p.Port == GatewayHostPort)
				}
			}
		}
		if !found {
			t.Errorf("%s: the gateway Service has no NodePort %d for port %d, which ctlptl.yaml maps to localhost:%d", overlay, GatewayNodePort, GatewayHostPort, GatewayHostPort)
		}
	}
}

func TestTiltfile(t *testing.T) {
	src := mustRead(t, "Tiltfile")
	hostPorts := ctlptl(t).HostPorts()
	// Default: no arguments means the dev overlay.
	run, err := EvalTiltfile(src, nil)
	if err != nil {
		t.Fatalf("Tiltfile: %v", err)
	}
	if got := run.Find("kustomize"); len(got) != 1 || got[0].Str(0, "") != "k8s/overlays/dev" {
		t.Errorf("without --overlay the Tiltfile should deploy k8s/overlays/dev")
	}
	want := slices.Clone(Overlays)
	slices.Sort(want)
	if got := TiltOverlays(run); !slices.Equal(got, want) {
		t.Errorf("Tiltfile OVERLAYS = %v, want %v", got, want)
	}
	report(t, "Tiltfile compile deps", CheckCompileDeps(run, RepoRoot()))
	if ds := run.Find("define_string"); len(ds) != 1 || ds[0].Str(0, "name") != "overlay" {
		t.Errorf("want config.define_string(\"overlay\")")
	}
	for _, overlay := range Overlays {
		t.Run(overlay, func(t *testing.T) {
			run, err := EvalTiltfile(src, map[string]string{"overlay": overlay})
			if err != nil {
				t.Fatalf("Tiltfile -- --overlay=%s: %v", overlay, err)
			}
			report(t, "Tiltfile", CheckTiltRun(run, TiltContext{
				Root: RepoRoot(), Overlay: overlay, Objects: render(t, overlay).objs, HostPorts: hostPorts,
			}))
		})
	}
	if _, err := EvalTiltfile(src, map[string]string{"overlay": "nope"}); err == nil || !strings.Contains(err.Error(), "unknown overlay") {
		t.Errorf("an unknown overlay should fail the Tiltfile, got %v", err)
	}
}

func TestDockerfiles(t *testing.T) {
	root := RepoRoot()
	df, err := readDockerfile(root, "Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	report(t, "Dockerfile", CheckDockerfile(df, string(mustRead(t, "go.work"))))
	tdf, err := readDockerfile(root, "k8s/image/Dockerfile.tilt")
	if err != nil {
		t.Fatal(err)
	}
	report(t, "Dockerfile.tilt", CheckTiltDockerfile(tdf))
	info, err := os.Stat(filepath.Join(root, "k8s/image/restart.sh"))
	if err != nil || info.Mode().Perm()&0o111 == 0 {
		t.Errorf("k8s/image/restart.sh must exist and be executable (COPY keeps the mode): %v", err)
	}
	// The dev target's context: what the dev stage copies must be in it too.
	if err := BuildContext(root, df.Stage("dev"), t.TempDir()); err != nil {
		t.Errorf("dev target context: %v", err)
	}
}

// TestRestartWrapper runs k8s/image/restart.sh under dash and busybox sh (the
// shell of the alpine dev image) the way Tilt's live update drives it: the
// running service's file is replaced with busybox tar (alpine's tar, which
// Tilt's sync runs in the container), SIGHUP reaches the service (which
// then stops without its shutdown delay) and restarts it into the new
// version, and SIGTERM reaches the service and ends the wrapper with the
// service's status.
func TestRestartWrapper(t *testing.T) {
	script := filepath.Join(RepoRoot(), "k8s/image/restart.sh")
	// A shell cannot trap a signal that was ignored when it started, and
	// children inherit ignored signals: under nohup (SIGHUP ignored) the
	// wrapper would never see Tilt's HUP. While this process handles SIGHUP,
	// the children it starts get the default disposition, as PID 1 of a
	// container has.
	if signal.Ignored(syscall.SIGHUP) {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	for _, shell := range [][]string{{"dash"}, {"busybox", "sh"}} {
		t.Run(shell[0], func(t *testing.T) {
			for _, tool := range []string{shell[0], "busybox"} {
				if _, err := exec.LookPath(tool); err != nil {
					t.Fatalf("%s is needed to test restart.sh (apt-get install -y dash busybox): %v", tool, err)
				}
			}
			dir := t.TempDir()
			log := filepath.Join(dir, "log")
			app, next := filepath.Join(dir, "app"), filepath.Join(dir, "next")
			os.Mkdir(app, 0o755)
			os.Mkdir(next, 0o755)
			// A stand-in service: records each start with its version and each graceful stop with its signal.
			service := func(version string) []byte {
				return []byte("#!/bin/sh\necho start " + version + " >> " + log + "\n" +
					"trap 'echo stop HUP >> " + log + "; exit 0' HUP\ntrap 'echo stop TERM >> " + log + "; exit 0' TERM\n" +
					"while :; do sleep 0.05; done\n")
			}
			os.WriteFile(filepath.Join(app, "server"), service("v1"), 0o755)
			cmd := exec.Command(shell[0], append(shell[1:], script, filepath.Join(app, "server"))...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer cmd.Process.Kill()
			waitFor := func(want string) {
				t.Helper()
				deadline := time.Now().Add(5 * time.Second)
				for time.Now().Before(deadline) {
					data, _ := os.ReadFile(log)
					if strings.TrimSpace(string(data)) == want {
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
				data, _ := os.ReadFile(log)
				t.Fatalf("log %q, want %q", data, want)
			}
			waitFor("start v1")
			// Live update: sync the new build over the running one, then signal.
			os.WriteFile(filepath.Join(next, "server"), service("v2"), 0o755)
			sync := exec.Command("sh", "-c", "tar -C "+next+" -cf - server | busybox tar -x -C "+app)
			if out, err := sync.CombinedOutput(); err != nil {
				t.Fatalf("sync with busybox tar: %v\n%s", err, out)
			}
			cmd.Process.Signal(syscall.SIGHUP)
			waitFor("start v1\nstop HUP\nstart v2")
			cmd.Process.Signal(syscall.SIGTERM)
			waitFor("start v1\nstop HUP\nstart v2\nstop TERM")
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("wrapper exit: %v, want the service's status 0", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("wrapper did not exit after SIGTERM")
			}
		})
	}
}
