// Package lifecycle is the one start/ready/drain sequence of every Car Build
// server, gRPC and HTTP alike. Run serves a main server (the gRPC API, or
// the gateway's public HTTP port) and the private operations server
// (/metrics, pprof); when the context ends (SIGTERM) or a server fails it
// turns readiness off, keeps serving for ShutdownDelay so load balancers
// see that first (not for a restart in place: ErrRestartInPlace), drains
// the main server's in-flight calls for up to ShutdownTimeout and then cuts
// what is left, and stops the operations server last, so the drain's last
// seconds are still scraped.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/shared/metrics"
)

// DefaultShutdownTimeout bounds a drain when Options.ShutdownTimeout is 0.
const DefaultShutdownTimeout = 15 * time.Second

// ErrRestartInPlace, as the cause of Run's context (context.WithCancelCause),
// shuts down without ShutdownDelay: the process is being restarted inside its
// own pod (SIGHUP from the dev image's restart.sh on a live update), which
// stays in its Service's endpoints, so there is no load balancer to wait for.
var ErrRestartInPlace = errors.New("restart in place (SIGHUP)")

// Server is one server on its listener.
type Server struct {
	// Name says what it serves ("grpc", "http", "metrics") in logs and errors.
	Name string
	// Listener is what it serves on.
	Listener net.Listener
	serve    func() error
	// drain stops taking new calls and waits for the ones in flight until ctx
	// ends; it reports whether they all finished.
	drain func(ctx context.Context) bool
	// stop cuts whatever is left.
	stop func()
	// leaving, when set, is called as shutdown begins, before ShutdownDelay.
	leaving func()
}

// GRPC serves s on lis. GracefulStop drains it, Stop cuts it.
func GRPC(lis net.Listener, s *grpc.Server) Server {
	return Server{
		Name: "grpc", Listener: lis,
		serve: func() error { return s.Serve(lis) },
		drain: func(ctx context.Context) bool {
			done := make(chan struct{})
			go func() {
				s.GracefulStop()
				close(done)
			}()
			select {
			case <-done:
				return true
			case <-ctx.Done():
				s.Stop()
				<-done
				return false
			}
		},
		stop: s.Stop,
	}
}

// HTTP serves s on lis (with TLS when s.TLSConfig holds the certificate).
// Shutdown drains it, Close cuts it. From the start of shutdown every
// response asks the client to close its connection ("Connection: close"; a
// GOAWAY in HTTP/2), so clients move to new connections, which the load
// balancer no longer sends here, during ShutdownDelay. Otherwise a
// keep-alive connection stays on this process until the drain closes it
// while idle, and a request sent at that instant fails without an answer.
func HTTP(name string, lis net.Listener, s *http.Server) Server {
	var leaving atomic.Bool
	next := s.Handler
	if next == nil {
		next = http.DefaultServeMux
	}
	s.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if leaving.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, r)
	})
	return Server{
		Name: name, Listener: lis, leaving: func() { leaving.Store(true) },
		serve: func() error {
			if s.TLSConfig != nil {
				return s.ServeTLS(lis, "", "")
			}
			return s.Serve(lis)
		},
		drain: func(ctx context.Context) bool { return s.Shutdown(ctx) == nil },
		stop:  func() { _ = s.Close() },
	}
}

// Ops listens on addr and returns the operations server: /metrics from reg,
// and /debug/pprof/ with pprof, plus extra (pattern → handler). It belongs on a private address: a scrape
// costs CPU and tells an attacker about the system, a profile stalls the
// process.
func Ops(addr string, reg *prometheus.Registry, pprof bool, extra map[string]http.Handler) (Server, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return Server{}, fmt.Errorf("listen metrics %s: %w", addr, err)
	}
	writeTimeout := 10 * time.Second
	if pprof {
		writeTimeout = 60 * time.Second // a 30 s CPU profile
	}
	mux := metrics.Mux(reg, pprof)
	for pattern, h := range extra {
		mux.Handle(pattern, h)
	}
	return HTTP("metrics", lis, metrics.NewHTTPServer(addr, mux, writeTimeout)), nil
}

// Options configure Run.
type Options struct {
	// ShutdownDelay keeps serving, already not ready, for this long before
	// draining, so load balancers see the readiness change first.
	ShutdownDelay time.Duration
	// ShutdownTimeout bounds the drain (DefaultShutdownTimeout when 0);
	// after it, the calls left are cut.
	ShutdownTimeout time.Duration
	// NotReady turns readiness off; called once, when shutdown starts.
	NotReady func()
	// Draining is called just before the drain starts, so long-lived
	// streams can end instead of holding it up (nil: nothing to tell).
	Draining func()
}

// Run serves main and ops until ctx ends or one of them fails, then shuts
// down in the order of the package comment. It returns the first serving
// error, or nil after a clean shutdown; a drain cut at ShutdownTimeout is
// logged ("drain timed out") and is not an error.
func Run(ctx context.Context, log *slog.Logger, o Options, main, ops Server) error {
	errc := make(chan error, 2)
	for _, s := range []Server{main, ops} {
		go func() {
			if err := s.serve(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve %s: %w", s.Name, err)
			}
		}()
	}
	log.Info("serving", main.Name, main.Listener.Addr().String(), ops.Name, ops.Listener.Addr().String())

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "cause", context.Cause(ctx))
	case runErr = <-errc:
		log.Error("server failed; shutting down", "err", runErr)
	}
	if o.NotReady != nil {
		o.NotReady()
	}
	if main.leaving != nil {
		main.leaving()
	}
	if o.ShutdownDelay > 0 {
		if errors.Is(context.Cause(ctx), ErrRestartInPlace) {
			log.Info("restart in place: no shutdown delay")
		} else {
			time.Sleep(o.ShutdownDelay)
		}
	}
	if o.Draining != nil {
		o.Draining()
	}
	timeout := o.ShutdownTimeout
	if timeout <= 0 {
		timeout = DefaultShutdownTimeout
	}
	dctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if main.drain(dctx) {
		log.Info("drained in-flight calls")
	} else {
		log.Warn("drain timed out; closing remaining calls", "timeout", timeout)
		main.stop()
	}
	octx, ocancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer ocancel()
	if !ops.drain(octx) {
		ops.stop()
	}
	log.Info("stopped")
	return runErr
}
