// Package grpcserver is the bootstrap every gRPC service of Car Build shares:
// the interceptor chain (metrics → logging → recovery), grpc.health.v1,
// server reflection, message size and keepalive limits, and readiness driven
// by a dependency check, served and shut down by package lifecycle.
package grpcserver

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"sync"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/netutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/carbuild/carbuild/shared/lifecycle"
)

// LivenessService is the grpc.health.v1 service name that reports SERVING for
// as long as the process runs; the empty name "" reports readiness.
const LivenessService = "liveness"

// MaxMessageBytes bounds every received and sent message.
const MaxMessageBytes = 1 << 20

// HandlingTimeBuckets are histogram buckets, in seconds, for services that
// answer in well under a millisecond when healthy.
var HandlingTimeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Options configure Run.
type Options struct {
	// Addr is the gRPC listen address, e.g. "127.0.0.1:50051" or ":50051".
	Addr string
	// MetricsAddr is the listen address of the /metrics HTTP server.
	MetricsAddr string
	// ShutdownTimeout bounds the graceful drain; after it, calls are cut.
	ShutdownTimeout time.Duration
	// ShutdownDelay keeps serving, already NOT_SERVING, for this long before
	// draining, so load balancers see the readiness change first.
	ShutdownDelay time.Duration
	// Pprof mounts net/http/pprof on the metrics server.
	Pprof bool
	// NoReflection leaves gRPC server reflection out.
	NoReflection bool
	// Ready is checked every ReadyInterval; while it fails, readiness is
	// NOT_SERVING. Nil means always ready.
	Ready         func(context.Context) error
	ReadyInterval time.Duration
}

// MaxConcurrentStreams bounds the calls one client connection may have open
// at once. The gateway and pricing multiplex every call over one connection
// per backend, so this is also what one caller can pile onto a server: past
// it, further calls wait in the caller (bounded by their deadline), not as
// goroutines and memory here. Well above what the database pools serve
// (8 + 16 connections), so it never limits useful work.
const MaxConcurrentStreams = 512

// MaxConnections bounds the client connections a server accepts at once; a
// client past it waits in the kernel's backlog. Each connection costs
// buffers and a keepalive; a few replicas of gateway and pricing need a
// handful.
const MaxConnections = 1024

// StreamWorkers is the number of goroutines kept to run calls; idle ones
// cost a few KiB of stack each.
const StreamWorkers = 64

// Server is a gRPC server with health, reflection and metrics wired in.
// Register services on GRPC(), then call Run.
type Server struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	grpc    *grpc.Server
	health  *health.Server
	metrics *grpcprom.ServerMetrics

	draining chan struct{} // closed when the drain starts
}

// New builds the server. reg receives the gRPC server metrics; extra server
// options (for example stats handlers) are appended.
func New(log *slog.Logger, reg *prometheus.Registry, extra ...grpc.ServerOption) *Server {
	m := grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(HandlingTimeBuckets),
	))
	reg.MustRegister(m)

	recoverOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in handler", "panic", p)
		return status.Error(codes.Internal, "internal error")
	})}
	opts := append([]grpc.ServerOption{
		// A client that connects and never completes the handshake is dropped.
		grpc.ConnectionTimeout(5 * time.Second),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		// Static windows turn off BDP estimation and its pings (see
		// package grpcclient, which does the same for the client side).
		grpc.StaticStreamWindowSize(MaxMessageBytes),
		grpc.StaticConnWindowSize(2 * MaxMessageBytes),
		// MaxConnectionAge makes clients reconnect now and then, so
		// round-robin clients re-resolve a headless Service and spread over
		// pods added by scale-out; the grace lets in-flight calls finish.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 5 * time.Minute, MaxConnectionAge: 30 * time.Second, MaxConnectionAgeGrace: 10 * time.Second,
			Time: 30 * time.Second, Timeout: 10 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		// A fixed pool of stream workers reuses goroutines (and their grown
		// stacks) instead of starting one per call. A call that finds every
		// worker busy gets a new goroutine whose stack grows again (copystack
		// was 12 % of the catalog's CPU with one worker per core and 64
		// concurrent calls), so the pool covers the concurrency we serve.
		grpc.NumStreamWorkers(uint32(max(StreamWorkers, runtime.GOMAXPROCS(0)))),
		grpc.ChainUnaryInterceptor(
			m.UnaryServerInterceptor(),
			logUnary(log),
			recovery.UnaryServerInterceptor(recoverOpts...),
		),
		grpc.ChainStreamInterceptor(
			m.StreamServerInterceptor(),
			logStream(log),
			recovery.StreamServerInterceptor(recoverOpts...),
		),
	}, extra...)
	s := &Server{log: log, reg: reg, grpc: grpc.NewServer(opts...), health: health.NewServer(), metrics: m,
		draining: make(chan struct{})}
	healthpb.RegisterHealthServer(s.grpc, s.health)
	return s
}

// GRPC returns the server to register services on.
func (s *Server) GRPC() *grpc.Server { return s.grpc }

// Draining returns a channel closed when Run starts draining (after
// ShutdownDelay, just before GracefulStop). GracefulStop waits for every open
// stream: handlers of long-lived streams return when it is closed, so the
// drain is not held up until ShutdownTimeout.
func (s *Server) Draining() <-chan struct{} { return s.draining }

// Run serves gRPC and metrics until ctx ends, then shuts down with the
// sequence of package lifecycle: readiness goes NOT_SERVING, after
// ShutdownDelay the server drains in-flight calls for up to ShutdownTimeout
// (Draining is closed as it starts), then stops hard; the metrics server
// stops last. It returns the first serving error, or nil after a clean
// shutdown.
func (s *Server) Run(ctx context.Context, o Options) error {
	if !o.NoReflection {
		reflection.Register(s.grpc)
	}
	s.metrics.InitializeMetrics(s.grpc)
	services := []string{""}
	for name := range s.grpc.GetServiceInfo() {
		if name != "grpc.health.v1.Health" {
			services = append(services, name)
		}
	}
	s.health.SetServingStatus(LivenessService, healthpb.HealthCheckResponse_SERVING)
	setReady := func(st healthpb.HealthCheckResponse_ServingStatus) {
		for _, name := range services {
			s.health.SetServingStatus(name, st)
		}
	}
	setReady(healthpb.HealthCheckResponse_NOT_SERVING)

	lis, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("listen grpc %s: %w", o.Addr, err)
	}
	ops, err := lifecycle.Ops(o.MetricsAddr, s.reg, o.Pprof, map[string]http.Handler{
		"GET /readyz":  s.healthHandler(""),
		"GET /healthz": s.healthHandler(LivenessService),
	})
	if err != nil {
		lis.Close()
		return err
	}

	readyCtx, stopReady := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.watchReadiness(readyCtx, o, setReady)
	}()
	return lifecycle.Run(ctx, s.log, lifecycle.Options{
		ShutdownDelay:   o.ShutdownDelay,
		ShutdownTimeout: o.ShutdownTimeout,
		NotReady: func() {
			stopReady()
			wg.Wait()
			s.health.Shutdown() // every service, liveness included, now NOT_SERVING
		},
		Draining: func() { close(s.draining) },
	}, lifecycle.GRPC(netutil.LimitListener(lis, MaxConnections), s.grpc), ops)
}

// healthHandler answers the grpc.health.v1 status of service over plain
// HTTP on the operations listener: 200 while SERVING, else 503. Kubernetes'
// native gRPC probes cannot speak TLS, so with mTLS on the gRPC port the
// probes use these instead (k8s/overlays/tls).
func (s *Server) healthHandler(service string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		resp, err := s.health.Check(r.Context(), &healthpb.HealthCheckRequest{Service: service})
		w.Header().Set("Cache-Control", "no-store")
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			http.Error(w, "NOT_SERVING", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("SERVING\n"))
	})
}

// watchReadiness flips readiness with the result of o.Ready until ctx ends.
func (s *Server) watchReadiness(ctx context.Context, o Options, set func(healthpb.HealthCheckResponse_ServingStatus)) {
	if o.Ready == nil {
		set(healthpb.HealthCheckResponse_SERVING)
		<-ctx.Done()
		return
	}
	interval := o.ReadyInterval
	if interval <= 0 {
		interval = 2 * time.Second
	}
	ready, checked := false, false
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, interval)
		err := o.Ready(cctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case err == nil && !ready:
			s.log.Info("ready: dependencies answer")
			set(healthpb.HealthCheckResponse_SERVING)
		case err != nil && (ready || !checked):
			s.log.Warn("not ready: dependency check failed", "err", err)
			set(healthpb.HealthCheckResponse_NOT_SERVING)
		}
		ready, checked = err == nil, true
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
