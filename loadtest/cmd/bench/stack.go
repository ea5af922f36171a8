package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	devstack "github.com/carbuild/carbuild/dev/stack"
)

// stack is the system under test.
type stack struct {
	url         string         // gateway base URL
	pids        map[string]int // service processes, when the bench started them
	pprofURLs   map[string]string
	databaseURL string // database the stack uses, when known
	pricingAddr string // pricing's gRPC address, when the bench started the stack
	stop        func() error
}

// startStack returns the running gateway named by -target, or builds and
// starts a private stack (package dev/stack) on free loopback ports with a
// fresh database, so a shared stack on the default ports is never disturbed.
func startStack(ctx context.Context, log *slog.Logger, cfg *config) (*stack, error) {
	if cfg.target != "" {
		log.Info("using a running stack", "target", cfg.target)
		return &stack{url: strings.TrimRight(cfg.target, "/"), pprofURLs: cfg.pprofURLs, stop: func() error { return nil }}, nil
	}
	addrs, err := devstack.FreeAddrs()
	if err != nil {
		return nil, err
	}
	env := append([]string{"LOG_LEVEL=" + cfg.serviceLogLevel}, cfg.serviceEnv...)
	if cfg.pprof {
		env = append(env, "PPROF=1")
	}
	var logs *os.File
	if cfg.serviceLogs != "" {
		if logs, err = os.Create(cfg.serviceLogs); err != nil {
			return nil, err
		}
	}
	fmt.Fprintf(os.Stderr, "== starting the stack (build, database, services) on free ports\n")
	t := time.Now()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	scfg := devstack.Config{Addrs: addrs, Env: env, Log: log, SkipBuild: cfg.skipBuild, BinDir: cfg.binDir}
	if cfg.pin {
		scfg.CPUs = strconv.Itoa(cfg.stackCPU)
	}
	if logs != nil {
		scfg.Logs = logs
	}
	stopDB := func() {}
	if cfg.durableDB { // durable.go
		if scfg.DatabaseURL, stopDB, err = privateDurableDB(sctx, log); err != nil {
			return nil, err
		}
	}
	s, err := devstack.Start(sctx, scfg)
	if err != nil {
		stopDB()
		if logs != nil {
			logs.Close()
		}
		return nil, fmt.Errorf("start the stack: %w", err)
	}
	log.Info("stack ready", "gateway", s.GatewayURL, "database", s.DatabaseSource, "took", time.Since(t).Round(time.Millisecond))
	st := &stack{
		url:         s.GatewayURL,
		databaseURL: s.DatabaseURL,
		pricingAddr: addrs.Pricing,
		pids:        map[string]int{},
		pprofURLs: map[string]string{
			"gateway": "http://" + addrs.GatewayMetrics,
			"catalog": "http://" + addrs.CatalogMetrics,
			"pricing": "http://" + addrs.PricingMetrics,
		},
		stop: func() error {
			err := s.Stop()
			stopDB()
			if logs != nil {
				logs.Close()
			}
			return err
		},
	}
	for _, name := range devstack.Services {
		if p := s.Process(name); p != nil {
			st.pids[name] = p.PID()
		}
	}
	return st, nil
}
