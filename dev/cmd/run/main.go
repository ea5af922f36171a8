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
	if err := run(ctx, log, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "run:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	db := fs.String("db", "carbuild", "database to create (if missing) and migrate on the PostgreSQL found; ignored when DATABASE_URL is set")
	skipBuild := fs.Bool("skip-build", false, "use the binaries already in bin/")
	prom := fs.Bool("prometheus", true, "also start Prometheus on 127.0.0.1:9090 when the prometheus binary is installed")
	execCmd := fs.String("exec", "", "run this shell command against a throw-away stack on free ports, then stop; "+
		"the command gets CARBUILD_URL, CARBUILD_METRICS_URLS, CATALOG_ADDR, PRICING_ADDR, DATABASE_URL and CARBUILD_ISSUER_URL (the dev issuer: GET $CARBUILD_ISSUER_URL/token?sub=...&roles=...)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *execCmd != "" {
		return execAgainstStack(ctx, log, *execCmd, *skipBuild)
	}
	cfg := stack.Config{Database: *db, SkipBuild: *skipBuild, Logs: os.Stdout, Log: log, DatabaseURL: os.Getenv("DATABASE_URL")}
	log.Info("building and starting catalog, pricing and gateway")
	s, err := stack.Start(ctx, cfg)
	if err != nil {
		return err
	}
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
	fmt.Printf(`
Car Build is running (PostgreSQL: %s)
  storefront      %[2]s/
  REST (v1)       %[2]s/v1/cars
  REST (compat)   %[2]s/get-pecas  /calcular  /pagar  /health
  OpenAPI         %[2]s/openapi.json
  gateway metrics %[2]s/metrics
  catalog gRPC    %s   metrics http://%s/metrics
  pricing gRPC    %s   metrics http://%s/metrics
  dev issuer      %s   (tokens: %[7]s/token?sub=<name>&roles=shopper[,operator])
Try: curl -s %[2]s/v1/cars
Tokens valid for 12 h (docs/security.md):
  shopper  (sub alice): export TOKEN=%[8]s
  operator (sub olga):  export OPERATOR_TOKEN=%[9]s
Ctrl-C stops everything.

`, s.DatabaseSource, s.GatewayURL, a.Catalog, a.CatalogMetrics, a.Pricing, a.PricingMetrics, s.Issuer.URL(), shopper, operator)

	if *prom {
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
		"CARBUILD_METRICS_URLS="+s.GatewayURL+"/metrics,http://"+a.CatalogMetrics+"/metrics,http://"+a.PricingMetrics+"/metrics",
		"CATALOG_ADDR="+a.Catalog, "PRICING_ADDR="+a.Pricing, "DATABASE_URL="+s.DatabaseURL,
		"CARBUILD_ISSUER_URL="+s.Issuer.URL(),
	)
	log.Info("running against the stack", "command", command, "gateway", s.GatewayURL, "service_logs", logs.Name())
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%q: %w (service logs: %s)", command, err, logs.Name())
	}
	return nil
}
