package boot_test

import (
	"context"
	"errors"
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
			ctx, stop := boot.SignalContext()
			defer stop()
			if err := syscall.Kill(syscall.Getpid(), tt.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(30 * time.Second):
				t.Fatalf("%v did not end the context", tt.sig)
			}
			cause := context.Cause(ctx)
			if errors.Is(cause, lifecycle.ErrRestartInPlace) != tt.isRestart || !strings.Contains(cause.Error(), tt.want) {
				t.Errorf("cause %v, want %q (restart in place %v)", cause, tt.want, tt.isRestart)
			}
		})
	}
}
