// Package boot is the start-up every Car Build service process shares, so
// that a service's main only reads its settings and its Run only wires its
// own parts: Main gives run the SIGINT/SIGTERM context and turns its error
// into the exit status; Start builds, in order, the logger, the token
// verifier, tracing, the metrics registry and (for the services that have
// one) the database pool; Close releases them in reverse.
package boot

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/resolver/dns"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/carbuild/carbuild/shared/auth"
	"github.com/carbuild/carbuild/shared/buildinfo"
	"github.com/carbuild/carbuild/shared/config"
	"github.com/carbuild/carbuild/shared/database"
	"github.com/carbuild/carbuild/shared/grpcclient"
	"github.com/carbuild/carbuild/shared/grpcserver"
	"github.com/carbuild/carbuild/shared/grpctls"
	"github.com/carbuild/carbuild/shared/lifecycle"
	"github.com/carbuild/carbuild/shared/logging"
	"github.com/carbuild/carbuild/shared/metrics"
	"github.com/carbuild/carbuild/shared/tracing"
)

// Main runs the process of the service name: it applies the garbage
// collector defaults (config.TuneGC), calls run with the command-line
// arguments and a context that ends on SIGINT or SIGTERM, and exits 1 with
// the error on stderr when run fails (0 after -h).
func Main(name string, run func(ctx context.Context, args []string) error) {
	config.TuneGC(os.LookupEnv)
	// A "dns:///" target (a headless Service) is re-resolved when a
	// connection fails, but by default at most once in 30 s: in a rolling
	// restart the caller then keeps no usable address for up to 30 s after
	// the old pod goes away, though the new one is Ready. Once a second
	// bounds that by the DNS record's TTL. It must be set before any dial.
	dns.SetMinResolutionInterval(time.Second)
	ctx, stop := SignalContext()
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// SignalContext returns a context that ends on the first SIGINT or SIGTERM
// (its cause names the signal) or SIGHUP (cause lifecycle.ErrRestartInPlace:
// the dev image's restart.sh restarts the process in its pod after a live
// update, and a shutdown delay would only make the change answer later).
// A SIGHUP that was ignored when the process started (nohup, a daemon's
// supervisor) stays ignored: the process was asked not to stop on it.
// Later signals are ignored until stop, which restores their defaults.
func SignalContext() (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigs := make(chan os.Signal, 1)
	watched := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGHUP) {
		watched = append(watched, syscall.SIGHUP)
	}
	signal.Notify(sigs, watched...)
	go func() {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				cancel(lifecycle.ErrRestartInPlace)
			} else {
				cancel(fmt.Errorf("signal: %v", s))
			}
		case <-ctx.Done():
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		cancel(context.Canceled)
	}
}

// Options are the settings Start needs.
type Options struct {
	// Name is the service's name in logs, metrics and traces.
	Name string
	// Config is the whole parsed configuration, logged at start (secrets
	// masked).
	Config slog.LogValuer
	Common config.Common
	Auth   auth.Config
	// Database asks for a pool on DatabaseURL, which must then be set.
	Database    bool
	DatabaseURL string
	DBMaxConns  int
}

// Process holds what every service starts with.
type Process struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Tracing  *tracing.Tracing
	// Verifier checks bearer tokens; nil when authentication is off.
	Verifier *auth.Verifier
	// Pool is the process's one database pool (nil without Database).
	Pool *pgxpool.Pool

	common        config.Common
	clientMetrics *grpcprom.ClientMetrics
	closers       []func()
}

// Start builds the Process. On error, what was built is already released.
func Start(ctx context.Context, o Options) (_ *Process, err error) {
	p := &Process{common: o.Common}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()
	if p.Log, err = logging.New(os.Stderr, o.Name, o.Common.LogLevel, o.Common.LogFormat); err != nil {
		return nil, err
	}
	if o.Database && o.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL (or -database-url) is required")
	}
	p.Log.Info("starting", "version", buildinfo.Version, "commit", buildinfo.Commit, "config", o.Config)
	// Every service verifies the token again, so a caller that reaches a
	// backend directly gets no more than through the gateway.
	if p.Verifier, err = auth.NewVerifier(o.Auth); err != nil {
		return nil, err
	}
	if !p.Verifier.Enabled() {
		p.Log.Warn("AUTH_ISSUER is not set: every caller is anonymous and bearer tokens are refused")
	}
	if p.Tracing, err = tracing.Setup(ctx, o.Name, p.Log); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() {
		if err := p.Tracing.Shutdown(); err != nil {
			p.Log.Warn("tracing shutdown", "err", err)
		}
	})
	p.Registry = metrics.NewRegistry(o.Name)
	if o.Database {
		if p.Pool, err = database.Open(ctx, o.DatabaseURL, database.Options{MaxConns: int32(o.DBMaxConns)}, p.Log, p.Registry); err != nil {
			return nil, err
		}
		p.closers = append(p.closers, p.Pool.Close)
	}
	return p, nil
}

// Defer adds f to what Close runs; f runs before everything added earlier
// (the pool closes last).
func (p *Process) Defer(f func()) { p.closers = append(p.closers, f) }

// Close releases what Start built and Defer added, last first.
func (p *Process) Close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// GRPCServer returns the service's gRPC server: the shared interceptor
// chain, tracing, mutual TLS between the services when configured, and
// token verification.
func (p *Process) GRPCServer() (*grpcserver.Server, error) {
	tlsOpts, err := grpctls.ServerOptions(p.common.GRPCTLS, p.common.GRPCTLSClients)
	if err != nil {
		return nil, err
	}
	opts := append(append(p.Tracing.ServerOptions(), tlsOpts...), auth.ServerOptions(p.Verifier)...)
	return grpcserver.New(p.Log, p.Registry, opts...), nil
}

// ServeGRPC runs srv on addr, its metrics on metricsAddr, until ctx ends,
// with the shutdown settings of Common; readiness follows the database.
func (p *Process) ServeGRPC(ctx context.Context, srv *grpcserver.Server, addr, metricsAddr string) error {
	o := grpcserver.Options{
		Addr:            addr,
		MetricsAddr:     metricsAddr,
		ShutdownTimeout: p.common.ShutdownTimeout,
		ShutdownDelay:   p.common.ShutdownDelay,
		Pprof:           p.common.Pprof,
		NoReflection:    !p.common.Reflection,
	}
	if p.Pool != nil {
		o.Ready = p.Pool.Ping
	}
	return srv.Run(ctx, o)
}

// Dial returns the one client connection to a backend at target, with
// client metrics, tracing, mutual TLS when configured, and timeout as the
// longest a call may take; protos are the files of the services it calls
// (their idempotent methods are retried on UNAVAILABLE). Close closes it.
func (p *Process) Dial(target string, timeout time.Duration, protos ...protoreflect.FileDescriptor) (*grpc.ClientConn, error) {
	tlsDial, err := grpctls.DialOptions(p.common.GRPCTLS)
	if err != nil {
		return nil, err
	}
	if p.clientMetrics == nil {
		p.clientMetrics = grpcclient.NewMetrics(p.Registry)
	}
	conn, err := grpcclient.Dial(target, p.clientMetrics, grpcclient.Options{DefaultTimeout: timeout, Protos: protos, Extra: append(p.Tracing.DialOptions(), tlsDial...)})
	if err != nil {
		return nil, err
	}
	p.Defer(func() { _ = conn.Close() })
	return conn, nil
}
