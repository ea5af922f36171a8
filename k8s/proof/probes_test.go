package proof

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
)

// TestProbesAgainstRunningBinaries starts each service with the environment
// its baseline manifest gives it (listen addresses moved to free loopback
// ports, backends and the database pointed at closed ports) and asks it what
// the kubelet would: the gateway's /healthz answers 200 and /readyz refuses
// while its backends are down; catalog's and pricing's gRPC health service
// "liveness" is SERVING and "" is NOT_SERVING without a database. Every
// service serves /metrics on the port Prometheus scrapes, and exits on SIGTERM.
func TestProbesAgainstRunningBinaries(t *testing.T) {
	bins := binaries(t)
	o := render(t, "baseline").objs
	for _, svc := range Services {
		t.Run(svc, func(t *testing.T) {
			t.Parallel()
			w := findWorkload(o, "Deployment", svc)
			c := w.Template.Spec.Containers[0]
			env, ports := localEnv(t, c)
			cmd := exec.Command(bins[svc].Path, c.Args...)
			cmd.Env = env
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer func() {
				cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-exited:
				case <-time.After(25 * time.Second):
					cmd.Process.Kill()
					t.Errorf("%s did not exit within 25 s of SIGTERM", svc)
				}
				if t.Failed() {
					t.Logf("%s output:\n%s", svc, out.String())
				}
			}()
			for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe} {
				if p.GRPC != nil {
					want := healthpb.HealthCheckResponse_SERVING
					if p.GRPC.Service == nil || *p.GRPC.Service == "" {
						want = healthpb.HealthCheckResponse_NOT_SERVING // no database
					}
					svcName := ""
					if p.GRPC.Service != nil {
						svcName = *p.GRPC.Service
					}
					eventually(t, fmt.Sprintf("grpc health %q = %v", svcName, want), func() error {
						return grpcHealth(ports[p.GRPC.Port], svcName, want)
					})
				}
				if h := p.HTTPGet; h != nil {
					port, _ := resolvePort(w.Template, h.Port, 0)
					ok := h.Path != "/readyz" // readiness must refuse: the backends are down
					eventually(t, "GET "+h.Path, func() error { return httpStatus(ports[port], h.Path, ok) })
				}
			}
			port, _ := strconv.Atoi(MetricsPorts[svc])
			eventually(t, "GET /metrics", func() error { return httpStatus(ports[int32(port)], "/metrics", true) })
		})
	}
}

// localEnv turns a container's env into a local process environment: listen
// addresses on free loopback ports (returned by container port), backends and
// the database on closed ports.
func localEnv(t *testing.T, c corev1.Container) ([]string, map[int32]string) {
	t.Helper()
	ports := map[int32]string{}
	env := []string{"PATH=/usr/bin:/bin"}
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.Name == "DATABASE_URL":
			v = "postgres://carbuild@127.0.0.1:1/carbuild?sslmode=disable&connect_timeout=1"
		case isListen(e.Name):
			_, p, _ := net.SplitHostPort(v)
			n, _ := strconv.Atoi(p)
			addr := freeAddr(t)
			ports[int32(n)] = addr
			v = addr
		case strings.HasSuffix(e.Name, "_ADDR"):
			v = "127.0.0.1:1"
		case e.ValueFrom != nil:
			t.Fatalf("env %s: unexpected valueFrom", e.Name)
		}
		env = append(env, e.Name+"="+v)
	}
	return env, ports
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("%s: %v", what, err)
}

func grpcHealth(addr, service string, want healthpb.HealthCheckResponse_ServingStatus) error {
	if addr == "" {
		return fmt.Errorf("probe port is not a listen port")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	if res.Status != want {
		return fmt.Errorf("status %v, want %v", res.Status, want)
	}
	return nil
}

func httpStatus(addr, path string, ok bool) error {
	if addr == "" {
		return fmt.Errorf("probe port is not a listen port")
	}
	client := http.Client{Timeout: time.Second}
	res, err := client.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	res.Body.Close()
	switch {
	case ok && res.StatusCode != http.StatusOK:
		return fmt.Errorf("status %d, want 200", res.StatusCode)
	case !ok && (res.StatusCode < 500):
		return fmt.Errorf("status %d, want a 5xx refusal while the backends are down", res.StatusCode)
	}
	return nil
}
