// Package e2e starts the real catalog, pricing and gateway binaries against a
// real, freshly migrated PostgreSQL database and drives them over the network:
// every REST route of both surfaces through the gateway, and every gRPC method
// (and server reflection) of catalog and pricing directly.
package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/carbuild/carbuild/dev/stack"
)

// sys is the stack every test of the package talks to.
var sys *stack.Stack

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	addrs, err := stack.FreeAddrs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	bin, err := os.MkdirTemp("", "carbuild-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(bin)
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("component", "e2e")
	start := time.Now()
	sys, err = stack.Start(ctx, stack.Config{Addrs: addrs, BinDir: bin, Log: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: start stack:", err)
		return 1
	}
	log.Info("stack ready", "gateway", sys.GatewayURL, "database", sys.DatabaseSource, "took", time.Since(start).Round(time.Millisecond))
	code := m.Run()
	if code != 0 {
		fmt.Fprintln(os.Stderr, "---- service logs ----\n"+sys.Logs())
	}
	if err := sys.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stop:", err)
		return 1
	}
	return code
}
