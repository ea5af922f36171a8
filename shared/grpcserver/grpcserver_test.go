package grpcserver_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/carbuild/carbuild/shared/grpcserver"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// run starts Run(ctx, o) of a server from newServer on fresh loopback
// addresses (o's Addr and MetricsAddr are filled in) and returns once it
// answers its liveness check: the server, its addresses and Run's result.
// An address free a moment ago can be taken before Run listens (a parallel
// test's or package's connection gets it as its source port): Run then
// fails at once with EADDRINUSE, and run tries again, with a new server
// (Run registers services, so it runs once per server) on new addresses,
// instead of waiting for a server that never comes.
func run(t *testing.T, ctx context.Context, newServer func() *grpcserver.Server, o grpcserver.Options) (srv *grpcserver.Server, addr, metricsAddr string, runErr <-chan error) {
	t.Helper()
	for range 5 {
		srv = newServer()
		o.Addr, o.MetricsAddr = freeAddr(t), freeAddr(t)
		done := make(chan error, 1)
		go func(srv *grpcserver.Server, o grpcserver.Options) { done <- srv.Run(ctx, o) }(srv, o)
		conn, err := grpc.NewClient(o.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		err = waitServing(t, conn, done)
		conn.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			t.Logf("Run: %v; again on other addresses", err)
			continue
		}
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return srv, o.Addr, o.MetricsAddr, done
	}
	t.Fatal("no free address in 5 tries")
	return nil, "", "", nil
}

func newServer() *grpcserver.Server {
	return grpcserver.New(slog.New(slog.DiscardHandler), prometheus.NewRegistry())
}

// waitServing polls conn's liveness until it answers SERVING (nil) or Run
// ends (its error, which it puts back on done).
func waitServing(t *testing.T, conn *grpc.ClientConn, done chan error) error {
	t.Helper()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		if _, err := healthpb.NewHealthClient(conn).Check(cctx, &healthpb.HealthCheckRequest{Service: grpcserver.LivenessService}); err == nil {
			return nil
		}
		select {
		case err := <-done:
			done <- err
			if err == nil {
				err = errors.New("Run returned before serving")
			}
			return err
		case <-cctx.Done():
			t.Fatal("server never answered")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitDesc is a service with one server-streaming method, Wait, whose
// handler returns only when its stream's context ends or the server drains.
var waitDesc = grpc.StreamDesc{StreamName: "Wait", ServerStreams: true}

func registerWait(srv *grpcserver.Server, started chan<- struct{}) {
	desc := waitDesc
	desc.Handler = func(_ any, stream grpc.ServerStream) error {
		if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		if err := stream.SendMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		started <- struct{}{}
		select {
		case <-srv.Draining():
			return nil
		case <-stream.Context().Done():
			return stream.Context().Err()
		}
	}
	srv.GRPC().RegisterService(&grpc.ServiceDesc{
		ServiceName: "carbuild.test.Waiter",
		HandlerType: (*any)(nil),
		Streams:     []grpc.StreamDesc{desc},
	}, struct{}{})
}

// TestDrainingEndsLongLivedStreams checks that an open stream whose handler
// watches Draining does not hold up the shutdown: Run returns well before
// ShutdownTimeout and the client sees the stream end cleanly.
func TestDrainingEndsLongLivedStreams(t *testing.T) {
	t.Parallel()
	started := make(chan struct{}, 1)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	const shutdownTimeout = 20 * time.Second
	srv, addr, _, runErr := run(t, ctx, func() *grpcserver.Server {
		s := newServer()
		registerWait(s, started)
		return s
	}, grpcserver.Options{ShutdownTimeout: shutdownTimeout, ShutdownDelay: 100 * time.Millisecond})

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := conn.NewStream(cctx, &waitDesc, "/carbuild.test.Waiter/Wait")
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.SendMsg(new(emptypb.Empty)); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
		t.Fatal(err)
	}
	<-started
	select {
	case <-srv.Draining():
		t.Fatal("Draining closed while serving")
	default:
	}

	start := time.Now()
	stop()
	ended := make(chan error, 1)
	go func() { ended <- stream.RecvMsg(new(emptypb.Empty)) }()
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want a clean end (io.EOF)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stream still open 10s after shutdown began")
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still draining 10s after shutdown began")
	}
	took := time.Since(start)
	t.Logf("shutdown with an open stream took %s (ShutdownDelay 100ms, ShutdownTimeout %s)", took, shutdownTimeout)
	if took >= shutdownTimeout/2 {
		t.Errorf("shutdown took %s: the open stream held the drain up", took)
	}
	select {
	case <-srv.Draining():
	default:
		t.Error("Draining not closed after Run returned")
	}
}

// TestUnknownMethodsAddNoSeries: a client calling made-up services and
// methods gets Unimplemented and adds no metric series (the server metrics
// are labelled by the methods registered, initialised at start); reflection
// is served only when not turned off.
func TestUnknownMethodsAddNoSeries(t *testing.T) {
	t.Parallel()
	for _, noReflection := range []bool{false, true} {
		var reg *prometheus.Registry
		ctx, stop := context.WithCancel(context.Background())
		srv, addr, _, runErr := run(t, ctx, func() *grpcserver.Server {
			reg = prometheus.NewRegistry()
			return grpcserver.New(slog.New(slog.DiscardHandler), reg)
		}, grpcserver.Options{NoReflection: noReflection})
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		count := func() int {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, mf := range mfs {
				n += len(mf.GetMetric())
			}
			return n
		}
		before := count()
		for i := range 1000 {
			err := conn.Invoke(cctx, fmt.Sprintf("/made.up.Service%d/Method%d", i%37, i), new(emptypb.Empty), new(emptypb.Empty))
			if status.Code(err) != codes.Unimplemented {
				t.Fatalf("made-up method: %v, want Unimplemented", err)
			}
		}
		if after := count(); after != before {
			t.Errorf("series grew from %d to %d with 1,000 made-up methods", before, after)
		}
		_, hasReflection := srv.GRPC().GetServiceInfo()["grpc.reflection.v1.ServerReflection"]
		if hasReflection == noReflection {
			t.Errorf("NoReflection %v: reflection registered = %v", noReflection, hasReflection)
		}
		cancel()
		conn.Close()
		stop()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// TestHTTPHealth checks the plain-HTTP mirror of grpc.health.v1 on the
// operations listener (what probes use when the gRPC port needs mTLS):
// /readyz follows the readiness check, /healthz liveness.
func TestHTTPHealth(t *testing.T) {
	t.Parallel()
	var ready atomic.Bool
	ctx, stop := context.WithCancel(context.Background())
	_, _, metricsAddr, runErr := run(t, ctx, newServer, grpcserver.Options{ReadyInterval: 10 * time.Millisecond,
		Ready: func(context.Context) error {
			if !ready.Load() {
				return errors.New("not yet")
			}
			return nil
		}})
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) int {
		resp, err := client.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// waitFor polls until path answers want: the states change on the
	// server's own schedule.
	waitFor := func(path string, want int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for get(path) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s never answered %d (last %d)", path, want, get(path))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("/healthz", http.StatusOK)
	if got := get("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("/readyz while the readiness check fails: %d, want 503", got)
	}
	ready.Store(true)
	waitFor("/readyz", http.StatusOK)
	if got := get("/healthz"); got != http.StatusOK {
		t.Errorf("/healthz when ready: %d, want 200", got)
	}
	stop()
	if err := <-runErr; err != nil {
		t.Errorf("Run: %v", err)
	}
}
