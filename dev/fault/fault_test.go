// Package fault runs Car Build's real binaries against a real PostgreSQL and
// injects faults while a steady load runs, reporting its figures (requests
// sent, failed, recovered-after) with t.Logf:
//
//   - TestDrainGateway, TestDrainCatalog, TestDrainPricing: SIGTERM to one of
//     two instances (a readiness-following balancer for the gateway, one DNS
//     name with two addresses for catalog and pricing) → 0 failed requests;
//   - TestDrainInFlight: SIGTERM to the only pricing → calls in flight finish,
//     new calls get a prompt 503; TestDrainTimeout: a call longer than
//     SHUTDOWN_TIMEOUT is cut with a 503 and the process still exits 0;
//   - TestCrashCatalog: kill -9 → clear 503s while down, recovery after a
//     restart of catalog alone;
//   - TestDatabaseRestart: pg_ctl stop/start of a private PostgreSQL →
//     readiness off and back, every order stored exactly once;
//   - TestDatabaseCrash: SIGKILL to a durable private PostgreSQL under
//     concurrent orders → every confirmed order survives crash recovery;
//   - TestSlowBackend: a delaying proxy → deadlines hold, nothing leaks;
//   - TestExactlyOnce, TestLeastPrivilegeRoles, TestHardening.
//
// Every test is bounded in time and stops everything it started, also on
// failure. Everything listens on loopback on free ports, beside any stack
// on the default ports. See docs/reliability.md.
//
// Run: go test -count=1 -v ./dev/fault   (about two minutes on 2 cores)
package fault

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/migrations/pgboot"
)

// binDir holds the binaries built once for the whole run.
var binDir string

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "carbuild-fault-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	// FAULT_ROOT builds the binaries from another checkout (e.g. a `git
	// archive` of HEAD while the working tree is mid-change).
	root, err := os.Getenv("FAULT_ROOT"), error(nil)
	if root == "" {
		root, err = stack.FindRoot()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	start := time.Now()
	err = stack.Build(ctx, root, dir)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault: build:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "fault: built binaries in %s\n", time.Since(start).Round(time.Millisecond))
	binDir = dir
	code := m.Run()
	closeServer()
	return code
}

var (
	serverOnce sync.Once
	server     *pgboot.Server
	serverErr  error
)

// adminURL returns the admin DSN of the PostgreSQL the tests share (found
// like everywhere else: DATABASE_URL, 127.0.0.1:5432, or a private server).
func adminURL(t *testing.T) string {
	t.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		server, serverErr = pgboot.Find(ctx, nil)
	})
	if serverErr != nil {
		t.Fatalf("PostgreSQL: %v", serverErr)
	}
	return server.URL
}

func closeServer() {
	if server != nil {
		server.Close()
	}
}

// newDatabase creates an empty database for one test, dropped at cleanup
// (after the processes, which register their cleanups later and so stop
// first). The stack migrates it.
func newDatabase(t *testing.T, admin string) string {
	t.Helper()
	name := "carbuild_fault_" + strings.ReplaceAll(strings.ToLower(randomKey(6)), "-", "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dsn, err := pgboot.CreateDatabase(ctx, admin, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := pgboot.DropDatabase(ctx, admin, name); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return dsn
}

// startStack starts catalog, pricing and gateway from the prebuilt binaries
// on free ports. It is stopped at cleanup; its logs are printed when the
// test failed.
func startStack(t *testing.T, cfg stack.Config) *stack.Stack {
	t.Helper()
	if cfg.Addrs == (stack.Addrs{}) {
		addrs, err := stack.FreeAddrs()
		if err != nil {
			t.Fatal(err)
		}
		cfg.Addrs = addrs
	}
	if cfg.DatabaseURL == "" {
		cfg.DatabaseURL = newDatabase(t, adminURL(t))
	}
	cfg.SkipBuild, cfg.BinDir = true, binDir
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	start := time.Now()
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Logf("stack ready in %s (gateway %s)", time.Since(start).Round(time.Millisecond), s.GatewayURL)
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stop stack: %v", err)
		}
		if t.Failed() {
			t.Logf("---- service logs ----\n%s", lastLines(s.Logs(), 200))
		}
	})
	return s
}

// proc is an extra service process started by a test (a second instance).
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	logs *lockedBuffer
}

// startProc starts one more instance of a service binary with the given
// environment (added to ours), stopped with SIGTERM at cleanup.
func startProc(t *testing.T, name string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = append(append(os.Environ(), "LOG_FORMAT=text"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), logs: &lockedBuffer{}}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop(10 * time.Second)
		if t.Failed() {
			t.Logf("---- %s (extra instance) logs ----\n%s", name, lastLines(p.logs.String(), 100))
		}
	})
	return p
}

func (p *proc) stop(timeout time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// httpGet fetches a URL with a short timeout; status 0 means no answer.
func httpGet(url string) (int, string) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stackConfig is the configuration of a test's stack: env is added to every
// service's environment.
func stackConfig(env ...string) stack.Config { return stack.Config{Env: env} }
