// Command run starts Car Build locally (`make run`): PostgreSQL (DATABASE_URL,
// else a local server on 127.0.0.1:5432, else a private throw-away one),
// migrations, a local OIDC issuer (tokens for a shopper and an operator are
// printed), then catalog, pricing and gateway, with every log line on the
// terminal. Ctrl-C stops everything, gateway first.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/auth/devissuer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "run")
	if err := run(ctx, log, os.Args[1:], os.Stdout); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

// run starts the stack and prints the banner and the services' logs on
// stdout; it returns when ctx ends (the stack stopped) or the start fails.
func run(ctx context.Context, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	db := fs.String("db", "carbuild", "database to create (if missing) and migrate on the PostgreSQL found; ignored when DATABASE_URL is set")
	skipBuild := fs.Bool("skip-build", false, "use the binaries already in bin/")
	binDir := fs.String("bin", "", "folder for the built binaries (default: bin/ in the repository)")
	freePorts := fs.Bool("free-ports", false, "listen on free loopback ports instead of :8000, :50051, :50052, :9091, :9092 (the banner prints them; no Prometheus)")
	readyTimeout := fs.Duration("ready-timeout", 60*time.Second, "longest wait for the gateway's /readyz to answer 200 before giving up")
	prom := fs.Bool("prometheus", true, "also start Prometheus on 127.0.0.1:9090 when the prometheus binary is installed")
	execCmd := fs.String("exec", "", "run this shell command against a throw-away stack on free ports, then stop; "+
		"the command gets CARBUILD_URL, CARBUILD_METRICS_URLS, CATALOG_ADDR, PRICING_ADDR, DATABASE_URL and CARBUILD_ISSUER_URL (the dev issuer: GET $CARBUILD_ISSUER_URL/token?sub=...&roles=...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *execCmd != "" {
		return execAgainstStack(ctx, log, *execCmd, *skipBuild)
	}
	cfg := stack.Config{Database: *db, SkipBuild: *skipBuild, BinDir: *binDir, Logs: stdout, Log: log,
		DatabaseURL: os.Getenv("DATABASE_URL"), ReadyTimeout: *readyTimeout}
	if *freePorts {
		addrs, err := stack.FreeAddrs()
		if err != nil {
			return err
		}
		cfg.Addrs = addrs
	}
	log.Info("building and starting catalog, pricing and gateway")
	start := time.Now()
	// Start returns once the gateway's /readyz answers 200 (catalog and
	// pricing serving), or fails after ReadyTimeout with the last answer:
	// before that /health says "unhealthy" and calls may answer 503, so the
	// banner below is what a user (or a script) may wait for.
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("ready", "readyz", s.GatewayURL+"/readyz", "took", time.Since(start).Round(time.Millisecond))
	defer func() {
		log.Info("stopping")
		if err := s.Stop(); err != nil {
			log.Error("stop", "err", err)
		}
		log.Info("stopped")
	}()
	a := s.Addrs
	shopper, operator, err := devTokens(s)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Car Build is running (PostgreSQL: %s)
  storefront      %[2]s/
  REST (v1)       %[2]s/v1/cars
  REST (compat)   %[2]s/get-pecas  /calcular  /pagar  /health
  readiness       %[2]s/readyz (answered 200 before this banner)
  OpenAPI         %[2]s/openapi.json
  gateway metrics http://%[7]s/metrics (private operations port)
  catalog gRPC    %[3]s   metrics http://%[4]s/metrics
  pricing gRPC    %[5]s   metrics http://%[6]s/metrics
  dev issuer      %[8]s   (tokens: %[8]s/token?sub=<name>&roles=shopper[,operator])
Try: curl -s %[2]s/v1/cars
Tokens valid for 12 h (docs/security.md):
  shopper  (sub alice): export TOKEN=%[9]s
  operator (sub olga):  export OPERATOR_TOKEN=%[10]s
Ctrl-C stops everything.

`, s.DatabaseSource, s.GatewayURL, a.Catalog, a.CatalogMetrics, a.Pricing, a.PricingMetrics, a.GatewayMetrics, s.Issuer.URL(), shopper, operator)

	// Prometheus's local config scrapes the default ports (and listens on
	// :9090, which the stack on the default ports may already use).
	if *prom && *freePorts {
		log.Info("prometheus not started: it scrapes the default ports, not -free-ports")
	} else if *prom {
		if stopProm := startPrometheus(log); stopProm != nil {
			defer stopProm()
		}
	}
	for name, p := range map[string]*stack.Process{"catalog": s.Process("catalog"), "pricing": s.Process("pricing"), "gateway": s.Process("gateway")} {
		go func() {
			_ = p.Wait()
			if ctx.Err() == nil {
				log.Error("service exited; press Ctrl-C to stop the rest", "service", name)
			}
		}()
	}
	<-ctx.Done()
	return nil
}

// devTokens signs the tokens printed at start: a shopper ("alice") and an
// operator ("olga"), so the curl and grpcurl examples work at once.
func devTokens(s *stack.Stack) (shopper, operator string, err error) {
	if shopper, err = s.Issuer.Token(devissuer.Claims{Subject: "alice", Roles: []string{auth.RoleShopper}, TTL: 12 * time.Hour}); err != nil {
		return "", "", err
	}
	operator, err = s.Issuer.Token(devissuer.Claims{Subject: "olga", Roles: []string{auth.RoleShopper, auth.RoleOperator}, TTL: 12 * time.Hour})
	return shopper, operator, err
}

// startPrometheus runs observability/prometheus/run-local.sh when present;
// the script itself says when the prometheus binary is missing.
func startPrometheus(log *slog.Logger) func() {
	root, err := stack.FindRoot()
	if err != nil {
		return nil
	}
	script := filepath.Join(root, "observability", "prometheus", "run-local.sh")
	if _, err := os.Stat(script); err != nil {
		return nil
	}
	cmd := exec.Command("bash", script)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Warn("prometheus not started", "err", err)
		return nil
	}
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
}

// execAgainstStack starts a stack on free ports with a fresh database, runs
// command with the stack's addresses in its environment, and stops the stack.
// The command's failure is the run's failure.
func execAgainstStack(ctx context.Context, log *slog.Logger, command string, skipBuild bool) error {
	addrs, err := stack.FreeAddrs()
	if err != nil {
		return err
	}
	logs, err := os.CreateTemp("", "carbuild-stack-*.log")
	if err != nil {
		return err
	}
	defer logs.Close()
	s, err := stack.Start(ctx, stack.Config{Addrs: addrs, SkipBuild: skipBuild, Log: log, Logs: logs})
	if err != nil {
		return err
	}
	defer func() {
		if err := s.Stop(); err != nil {
			log.Error("stop", "err", err)
		}
	}()
	a := s.Addrs
	cmd := exec.CommandContext(ctx, "bash", "-c", command)
	cmd.Stdout, cmd.Stderr, cmd.Stdin = os.Stdout, os.Stderr, nil
	cmd.Env = append(os.Environ(),
		"CARBUILD_URL="+s.GatewayURL,
		"CARBUILD_METRICS_URLS=http://"+a.GatewayMetrics+"/metrics,http://"+a.CatalogMetrics+"/metrics,http://"+a.PricingMetrics+"/metrics",
		"CATALOG_ADDR="+a.Catalog, "PRICING_ADDR="+a.Pricing, "DATABASE_URL="+s.DatabaseURL,
		"CARBUILD_ISSUER_URL="+s.Issuer.URL(),
	)
	log.Info("running against the stack", "command", command, "gateway", s.GatewayURL, "service_logs", logs.Name())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%q: %w (service logs: %s)", command, err, logs.Name())
	}
	return nil
}
