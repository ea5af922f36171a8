package main

import (
	"context"
	"errors"
	"log/slog"
)

// stack is the system under test.
type stack struct {
	url         string         // gateway base URL
	pids        map[string]int // service processes, when the bench started them
	databaseURL string         // database the stack uses, when known
	stop        func() error
}

// startStack returns the running gateway named by -target.
// TODO(stack): start the local stack through github.com/carbuild/carbuild/dev/stack
// when -target is empty, once the lead publishes it (/work/notes/STACK-READY).
func startStack(_ context.Context, log *slog.Logger, cfg *config) (*stack, error) {
	if cfg.target == "" {
		return nil, errors.New("no -target given and the stack runner is not wired in yet: start the stack (make run) and pass -target http://127.0.0.1:8000")
	}
	log.Info("using a running stack", "target", cfg.target)
	return &stack{url: cfg.target, stop: func() error { return nil }}, nil
}
