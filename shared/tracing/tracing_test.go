package tracing_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbuild/carbuild/shared/tracing"
)

func TestOffByDefault(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
	tr, err := tracing.Setup(context.Background(), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if tr.Enabled() || tr.ServerOptions() != nil || tr.DialOptions() != nil {
		t.Error("tracing is on without an OTLP endpoint")
	}
}

// With a collector that is not there, start-up and calls still work and
// shutdown ends: the exporter never blocks the service.
func TestAbsentCollectorNeverBlocks(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	done := make(chan struct{})
	go func() {
		defer close(done)
		tr, err := tracing.Setup(context.Background(), "test", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Error(err)
			return
		}
		if !tr.Enabled() {
			t.Error("tracing is off with an OTLP endpoint set")
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Error(err)
			return
		}
		srv := grpc.NewServer(tr.ServerOptions()...)
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go srv.Serve(lis)
		defer srv.Stop()
		conn, err := grpc.NewClient(lis.Addr().String(), append(tr.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("traced call failed: %v", err)
		}
		_ = tr.Shutdown() // bounded by its own 5 s timeout; the error (collector absent) is expected
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("tracing set-up, a traced call or shutdown hung with the collector absent")
	}
}
