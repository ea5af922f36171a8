package lifecycle_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/carbuild/carbuild/shared/lifecycle"
)

// syncBuffer is a log sink safe for the server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listeners returns a listener for the main server and an operations server
// on a free port, both on loopback.
func listeners(t *testing.T) (net.Listener, lifecycle.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := lifecycle.Ops("127.0.0.1:0", prometheus.NewRegistry(), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	return lis, ops
}

// TestRunDrainsHTTP: a request in flight when shutdown starts is answered;
// readiness is off before the drain starts; the drain, not a timeout, ends
// the run; metrics answer throughout.
func TestRunDrainsHTTP(t *testing.T) {
	for _, tt := range []struct {
		name         string
		timeout      time.Duration
		wantLog      string
		wantAnswered bool
	}{
		{"drained", time.Minute, "drained in-flight calls", true},
		{"cut at the timeout", time.Nanosecond, "drain timed out", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			entered, release := make(chan struct{}), make(chan struct{})
			mux := http.NewServeMux()
			mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
				close(entered)
				<-release
				_, _ = io.WriteString(w, "done")
			})
			lis, ops := listeners(t)
			var logs syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			notReady := make(chan struct{})
			draining := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- lifecycle.Run(ctx, slog.New(slog.NewTextHandler(&logs, nil)), lifecycle.Options{
					ShutdownTimeout: tt.timeout,
					NotReady:        func() { close(notReady) },
					Draining: func() {
						select {
						case <-notReady:
						default:
							t.Error("the drain started before readiness was off")
						}
						close(draining)
						if tt.wantAnswered {
							close(release)
						}
					},
				}, lifecycle.HTTP("http", lis, &http.Server{Handler: mux}), ops)
			}()

			answer := make(chan string, 1)
			go func() {
				resp, err := http.Get("http://" + lis.Addr().String() + "/slow")
				if err != nil {
					answer <- "error: " + err.Error()
					return
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				answer <- string(b)
			}()
			<-entered
			if resp, err := http.Get("http://" + ops.Listener.Addr().String() + "/metrics"); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("metrics while serving: %v %v", resp, err)
			}
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if !tt.wantAnswered {
				close(release)
			}
			got := <-answer
			if tt.wantAnswered != (got == "done") {
				t.Errorf("in-flight request got %q, answered want %v", got, tt.wantAnswered)
			}
			if !strings.Contains(logs.String(), tt.wantLog) {
				t.Errorf("logs %q do not say %q", logs.String(), tt.wantLog)
			}
		})
	}
}

// TestRestartInPlaceSkipsTheDelay: a context ended with ErrRestartInPlace
// (SIGHUP, a live update) drains at once instead of waiting ShutdownDelay,
// which only matters when load balancers must first take the pod out.
func TestRestartInPlaceSkipsTheDelay(t *testing.T) {
	lis, ops := listeners(t)
	var logs syncBuffer
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- lifecycle.Run(ctx, slog.New(slog.NewTextHandler(&logs, nil)), lifecycle.Options{
			ShutdownDelay: time.Hour,
		}, lifecycle.HTTP("http", lis, &http.Server{Handler: http.NotFoundHandler()}), ops)
	}()
	cancel(lifecycle.ErrRestartInPlace)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run still waits after 30 s: it slept the hour of ShutdownDelay on a restart in place")
	}
	if !strings.Contains(logs.String(), "restart in place: no shutdown delay") {
		t.Errorf("logs %q do not say the delay was skipped", logs.String())
	}
}
