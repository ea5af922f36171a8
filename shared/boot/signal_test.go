package boot_test

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/carbuild/carbuild/shared/boot"
	"github.com/carbuild/carbuild/shared/lifecycle"
)

// TestSignalContext: SIGHUP (restart.sh's restart in place) and SIGTERM (the
// kubelet) end the context with different causes, which decide whether
// shutdown waits ShutdownDelay.
func TestSignalContext(t *testing.T) {
	for _, tt := range []struct {
		sig       syscall.Signal
		isRestart bool
		want      string
	}{
		{syscall.SIGHUP, true, "restart in place"},
		{syscall.SIGTERM, false, "signal: terminated"},
		{syscall.SIGINT, false, "signal: interrupt"},
	} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			if tt.sig == syscall.SIGHUP && signal.Ignored(syscall.SIGHUP) {
				t.Skip("SIGHUP is ignored in this process (nohup): SignalContext leaves it so, TestSignalContextKeepsIgnoredHUP covers it")
			}
			ctx, stop := boot.SignalContext()
			defer stop()
			if err := syscall.Kill(syscall.Getpid(), tt.sig); err != nil {
				t.Fatal(err)
			}
			cause := waitCause(t, ctx)
			if errors.Is(cause, lifecycle.ErrRestartInPlace) != tt.isRestart || !strings.Contains(cause.Error(), tt.want) {
				t.Errorf("cause %v, want %q (restart in place %v)", cause, tt.want, tt.isRestart)
			}
		})
	}
}

// TestSignalContextKeepsIgnoredHUP: under nohup SIGHUP is ignored from the
// start; SignalContext must not take it back, or closing the terminal would
// restart (and, without restart.sh, stop) the service. The HUP sent first is
// dropped, so the context ends with the SIGTERM sent after it.
func TestSignalContextKeepsIgnoredHUP(t *testing.T) {
	if !signal.Ignored(syscall.SIGHUP) {
		signal.Ignore(syscall.SIGHUP)
		// Reset alone leaves an ignored signal ignored; a Notify first
		// gives the runtime its handler back (HUP stops the test binary
		// again, as before).
		defer func() {
			signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
			signal.Reset(syscall.SIGHUP)
		}()
	}
	ctx, stop := boot.SignalContext()
	defer stop()
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM} {
		if err := syscall.Kill(syscall.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
	}
	if cause := waitCause(t, ctx); errors.Is(cause, lifecycle.ErrRestartInPlace) || !strings.Contains(cause.Error(), "terminated") {
		t.Errorf("cause %v, want the SIGTERM's: an ignored SIGHUP must stay ignored", cause)
	}
}

func waitCause(t *testing.T, ctx context.Context) error {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("no signal ended the context")
	}
	return context.Cause(ctx)
}
