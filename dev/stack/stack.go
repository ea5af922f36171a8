// Package stack builds and runs Car Build locally: it finds or starts
// PostgreSQL (package pgboot), migrates a database, starts a local OIDC
// issuer (package devissuer) that every service trusts, builds the catalog,
// pricing and gateway binaries and starts them as real processes on
// loopback, then waits until the gateway reports ready. The run command, the
// end-to-end tests and the benchmark harness all start the system through it.
package stack

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/carbuild/carbuild/migrations"
	"github.com/carbuild/carbuild/migrations/pgboot"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

// Services in start order; they stop in reverse.
var Services = []string{"catalog", "pricing", "gateway"}

// Addrs are the listen addresses of the services.
type Addrs struct {
	Gateway        string // HTTP, e.g. 127.0.0.1:8000
	GatewayMetrics string // private operations port: /metrics, /debug/pprof/
	Catalog        string // gRPC
	CatalogMetrics string
	Pricing        string // gRPC
	PricingMetrics string
	// Issuer is the local OIDC issuer (HTTP) whose tokens the services accept.
	Issuer string
}

// DefaultAddrs are the earlier system's ports, kept so its clients and Prometheus config work (docs/architecture.md).
func DefaultAddrs() Addrs {
	return Addrs{
		Gateway:        "127.0.0.1:8000",
		GatewayMetrics: "127.0.0.1:9093",
		Catalog:        "127.0.0.1:50051",
		CatalogMetrics: "127.0.0.1:9091",
		Pricing:        "127.0.0.1:50052",
		PricingMetrics: "127.0.0.1:9092",
		Issuer:         "127.0.0.1:8010",
	}
}

// FreeAddrs picks free loopback ports for every service, for tests that run
// beside a stack already on the default ports.
func FreeAddrs() (Addrs, error) {
	var ports [7]string
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	for i := range ports {
		l, err := listenFree()
		if err != nil {
			return Addrs{}, err
		}
		held = append(held, l)
		ports[i] = l.Addr().String()
	}
	return Addrs{Gateway: ports[0], Catalog: ports[1], CatalogMetrics: ports[2], Pricing: ports[3], PricingMetrics: ports[4], GatewayMetrics: ports[5], Issuer: ports[6]}, nil
}

// FreeAddr returns a free loopback address (host:port) for a process a test
// starts itself.
func FreeAddr() (string, error) {
	l, err := listenFree()
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// listenFree listens on a free loopback port below the kernel's ephemeral
// range (32768-60999 by default). A port the kernel handed out with ":0"
// is free only until the listener closes: any outgoing connection of the
// machine may take it as its source port before the service binds it (seen:
// "bind: address already in use" at a catalog's start). Ports below the
// ephemeral range are never given to outgoing connections.
func listenFree() (net.Listener, error) {
	const lo, hi = 20000, 32768
	var err error
	for range 200 {
		var l net.Listener
		port := lo + mrand.IntN(hi-lo)
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("pick a free port in %d-%d: %w", lo, hi-1, err)
}

// Config says how to start the stack.
type Config struct {
	// Root is the repository root; empty means found from the working
	// directory (the folder holding go.work).
	Root string
	// BinDir receives the built binaries; default Root/bin.
	BinDir string
	// SkipBuild uses the binaries already in BinDir.
	SkipBuild bool
	// Addrs of the services; zero value means DefaultAddrs.
	Addrs Addrs
	// Database is the database name to create (if missing) and migrate on
	// the server pgboot finds. Empty: a fresh "carbuild_<random>" database,
	// dropped by Stop. Ignored when DatabaseURL is set.
	Database string
	// DatabaseURL, when set, is used as is (migrated, never dropped).
	DatabaseURL string
	// Env is added to every service's environment (e.g. "LOG_LEVEL=debug").
	Env []string
	// Logs receives every service's output, each line prefixed with its
	// name; nil discards it (it is still kept for Logs()).
	Logs io.Writer
	// Log reports progress.
	Log *slog.Logger
	// ReadyTimeout bounds the wait for readiness (default 60 s).
	ReadyTimeout time.Duration
	// TLS, when set, turns TLS on between everything: the gateway serves
	// HTTPS only and the services speak gRPC with mutual TLS (catalog
	// accepts the clients gateway and pricing, pricing accepts gateway).
	// PostgreSQL's TLS is DatabaseURL's (sslmode).
	TLS *TLS
	// CPUs, when set, is the CPU list the services run on (taskset -c
	// syntax, e.g. "0"); their Go runtimes size GOMAXPROCS to it.
	CPUs string
}

// TLS names the certificate files of a stack with TLS on: Dir holds ca.crt
// (the CA that signs every certificate) and <service>.crt and <service>.key
// for gateway, catalog and pricing, each naming the service (its identity)
// and 127.0.0.1 (the address its clients dial).
type TLS struct {
	Dir string
}

func (t *TLS) file(name string) string { return filepath.Join(t.Dir, name) }

// Stack is a running system.
type Stack struct {
	Addrs Addrs
	// GatewayURL is the gateway's base URL, e.g. http://127.0.0.1:8000.
	GatewayURL string
	// DatabaseURL is the migrated database the services use.
	DatabaseURL string
	// DatabaseSource says where PostgreSQL came from.
	DatabaseSource string
	// ClientTLS is the TLS configuration a client of the gateway needs
	// (trusting the stack's CA); nil when TLS is off.
	ClientTLS *tls.Config
	// Issuer is the local development issuer every service trusts (its URL
	// is AUTH_ISSUER); tests mint tokens with it.
	Issuer *devissuer.Issuer

	cfg     Config
	server  *pgboot.Server
	dropDB  string
	procs   map[string]*Process
	logMu   sync.Mutex
	logBuf  strings.Builder
	stopped bool
}

// Process is one running service.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
	err  error
}

// PID returns the process id.
func (p *Process) PID() int { return p.Cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to end and returns its exit error.
func (p *Process) Wait() error { <-p.done; return p.err }

// Start builds and starts everything. On error, whatever was started is
// stopped again.
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Root == "" {
		if cfg.Root, err = FindRoot(); err != nil {
			return nil, err
		}
	}
	if cfg.BinDir == "" {
		cfg.BinDir = filepath.Join(cfg.Root, "bin")
	}
	if cfg.Addrs == (Addrs{}) {
		cfg.Addrs = DefaultAddrs()
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 60 * time.Second
	}
	s := &Stack{cfg: cfg, Addrs: cfg.Addrs, GatewayURL: "http://" + cfg.Addrs.Gateway, procs: map[string]*Process{}}
	if cfg.TLS != nil {
		pem, err := os.ReadFile(cfg.TLS.file("ca.crt"))
		if err != nil {
			return nil, fmt.Errorf("stack TLS: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("stack TLS: no certificate in %s", cfg.TLS.file("ca.crt"))
		}
		s.ClientTLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		s.GatewayURL = "https://" + cfg.Addrs.Gateway
	}
	defer func() {
		if err != nil {
			s.Stop()
		}
	}()

	if !cfg.SkipBuild {
		t := time.Now()
		if err := Build(ctx, cfg.Root, cfg.BinDir); err != nil {
			return nil, err
		}
		cfg.Log.Info("built binaries", "dir", cfg.BinDir, "took", time.Since(t).Round(time.Millisecond))
	}
	if err := s.database(ctx); err != nil {
		return nil, err
	}
	if s.Issuer, err = devissuer.Start(cfg.Addrs.Issuer, devissuer.DefaultAudience); err != nil {
		return nil, err
	}
	cfg.Log.Info("dev issuer", "url", s.Issuer.URL())
	for _, name := range Services {
		if err := s.start(name); err != nil {
			return nil, err
		}
	}
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Build compiles the service binaries and the migrate tool into binDir.
func Build(ctx context.Context, root, binDir string) error {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", LDFlags(ctx, root), "-o", binDir+string(os.PathSeparator),
		"./catalog/cmd/catalog", "./pricing/cmd/pricing", "./gateway/cmd/gateway", "./migrations/cmd/migrate")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	return nil
}

// LDFlags stamps the version and commit of the working tree (from git, when
// available) into package buildinfo.
func LDFlags(ctx context.Context, root string) string {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	version, commit := git("describe", "--tags", "--always", "--dirty"), git("rev-parse", "--short", "HEAD")
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = "unknown"
	}
	const pkg = "github.com/carbuild/carbuild/shared/buildinfo"
	return fmt.Sprintf("-X %s.Version=%s -X %s.Commit=%s", pkg, version, pkg, commit)
}

// FindRoot walks up from the working directory to the folder with go.work.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (the folder with go.work) not found above the working directory")
		}
		dir = parent
	}
}

func (s *Stack) database(ctx context.Context) error {
	log := s.cfg.Log
	if s.cfg.DatabaseURL != "" {
		s.DatabaseURL, s.DatabaseSource = s.cfg.DatabaseURL, "the given DATABASE_URL"
	} else {
		srv, err := pgboot.Find(ctx, log)
		if err != nil {
			return err
		}
		s.server, s.DatabaseSource = srv, srv.Source
		name := s.cfg.Database
		if name == "" {
			var b [6]byte
			_, _ = rand.Read(b[:])
			name = "carbuild_" + hex.EncodeToString(b[:])
			s.dropDB = name
		}
		// An existing database (a previous `make run`) is kept and migrated.
		url, err := pgboot.EnsureDatabase(ctx, srv.URL, name)
		if err != nil {
			return err
		}
		s.DatabaseURL = url
	}
	db, err := migrations.Open(s.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := migrations.Up(ctx, db); err != nil {
		return err
	}
	log.Info("database migrated", "source", s.DatabaseSource, "url", pgboot.Redact(s.DatabaseURL))
	return nil
}

func (s *Stack) env(name string) []string {
	a := s.Addrs
	env := append(os.Environ(), "DATABASE_URL="+s.DatabaseURL, "LOG_FORMAT=text",
		"AUTH_ISSUER="+s.Issuer.URL(), "AUTH_AUDIENCE="+s.Issuer.Audience())
	switch name {
	case "catalog":
		env = append(env, "CATALOG_GRPC_ADDR="+a.Catalog, "CATALOG_METRICS_ADDR="+a.CatalogMetrics)
	case "pricing":
		env = append(env, "PRICING_GRPC_ADDR="+a.Pricing, "PRICING_METRICS_ADDR="+a.PricingMetrics, "CATALOG_ADDR="+a.Catalog)
	case "gateway":
		env = append(env, "GATEWAY_HTTP_ADDR="+a.Gateway, "GATEWAY_METRICS_ADDR="+a.GatewayMetrics, "CATALOG_ADDR="+a.Catalog, "PRICING_ADDR="+a.Pricing)
	}
	if t := s.cfg.TLS; t != nil {
		env = append(env, "GRPC_TLS_CA="+t.file("ca.crt"), "GRPC_TLS_CERT="+t.file(name+".crt"), "GRPC_TLS_KEY="+t.file(name+".key"))
		switch name {
		case "catalog":
			env = append(env, "GRPC_TLS_CLIENTS=gateway,pricing")
		case "pricing":
			env = append(env, "GRPC_TLS_CLIENTS=gateway")
		case "gateway":
			env = append(env, "GATEWAY_TLS_CERT="+t.file("gateway.crt"), "GATEWAY_TLS_KEY="+t.file("gateway.key"))
		}
	}
	return append(env, s.cfg.Env...)
}

func (s *Stack) start(name string) error {
	cmd := exec.Command(filepath.Join(s.cfg.BinDir, name))
	if s.cfg.CPUs != "" { // taskset execs the service: the PID is the service's
		cmd = exec.Command("taskset", "-c", s.cfg.CPUs, filepath.Join(s.cfg.BinDir, name))
	}
	cmd.Env = s.env(name)
	// Own process group: a terminal's Ctrl-C reaches only the runner, which
	// then stops the services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, Cmd: cmd, done: make(chan struct{})}
	s.procs[name] = p
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			s.logLine(name, sc.Text())
		}
	}()
	go func() {
		<-copied
		p.err = cmd.Wait()
		close(p.done)
	}()
	s.cfg.Log.Info("started", "service", name, "pid", cmd.Process.Pid)
	return nil
}

func (s *Stack) logLine(name, line string) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(&s.logBuf, "[%s] %s\n", name, line)
	if s.cfg.Logs != nil {
		fmt.Fprintf(s.cfg.Logs, "%-8s| %s\n", name, line)
	}
}

// Logs returns every service's output so far.
func (s *Stack) Logs() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logBuf.String()
}

// waitReady waits until the gateway's /readyz answers 200: every backend
// serving. Until then /health says "unhealthy" and calls may answer 503, so
// nothing may call the stack ready before.
func (s *Stack) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.ReadyTimeout)
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: s.ClientTLS}}
	defer client.CloseIdleConnections()
	for {
		for name, p := range s.procs {
			if p.Exited() {
				return fmt.Errorf("%s exited during start-up: %v\n%s", name, p.err, s.Logs())
			}
		}
		resp, err := client.Get(s.GatewayURL + "/readyz")
		last := ""
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status + " " + strings.TrimSpace(string(body))
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway's %s/readyz did not answer 200 within %s (last answer: %s)\n%s", s.GatewayURL, s.cfg.ReadyTimeout, last, s.Logs())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Process returns the named service's process (nil if not started).
func (s *Stack) Process(name string) *Process { return s.procs[name] }

// Restart starts a stopped or killed service again.
func (s *Stack) Restart(name string) error {
	if p := s.procs[name]; p != nil && !p.Exited() {
		return fmt.Errorf("%s is still running", name)
	}
	return s.start(name)
}

// StopService sends SIGTERM to one service and waits for it to exit.
func (s *Stack) StopService(name string, timeout time.Duration) error {
	p := s.procs[name]
	if p == nil || p.Exited() {
		return nil
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", name, timeout)
	}
}

// Stop stops the services (gateway first), drops a throw-away database and
// stops a private PostgreSQL. It is safe to call twice.
func (s *Stack) Stop() error {
	if s.stopped {
		return nil
	}
	s.stopped = true
	var errs []error
	for i := len(Services) - 1; i >= 0; i-- {
		name := Services[i]
		if err := s.StopService(name, 20*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", name, err))
		}
	}
	if s.Issuer != nil {
		_ = s.Issuer.Close()
	}
	if s.server != nil {
		if s.dropDB != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := pgboot.DropDatabase(ctx, s.server.URL, s.dropDB); err != nil {
				errs = append(errs, err)
			}
			cancel()
		}
		s.server.Close()
	}
	return errors.Join(errs...)
}
