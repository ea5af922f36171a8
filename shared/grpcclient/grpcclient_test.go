package grpcclient_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/emptypb"

	pricingv1 "github.com/carbuild/carbuild/shared/gen/carbuild/pricing/v1"
	pricingpb "github.com/carbuild/carbuild/shared/gen/pricing"
	"github.com/carbuild/carbuild/shared/grpcclient"
)

// The deadline a call reaches the server with is at most DefaultTimeout:
// a caller may shorten it, never lengthen it, and a call without one gets it.
func TestDeadlineIsCapped(t *testing.T) {
	seen := make(chan time.Duration, 1)
	srv := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		dl, ok := ctx.Deadline()
		if !ok {
			seen <- -1
		} else {
			seen <- time.Until(dl)
		}
		return h(ctx, req)
	}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	const limit = 2 * time.Second
	conn, err := grpcclient.Dial(lis.Addr().String(), grpcclient.NewMetrics(prometheus.NewRegistry()), grpcclient.Options{DefaultTimeout: limit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := healthpb.NewHealthClient(conn)

	tests := []struct {
		name     string
		caller   time.Duration // 0: no deadline
		min, max time.Duration
	}{
		{"no deadline gets the limit", 0, time.Second, limit},
		{"a longer deadline is capped", time.Hour, time.Second, limit},
		{"a shorter deadline is kept", 300 * time.Millisecond, 0, 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.caller)
				defer cancel()
			}
			if _, err := client.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			got := <-seen
			if got < tt.min || got > tt.max {
				t.Errorf("server saw a deadline %v away, want between %v and %v", got, tt.min, tt.max)
			}
		})
	}
}

// A call that fails UNAVAILABLE is tried again only when its method's proto
// declares it safe to repeat (idempotency_level), and never more than the
// policy's attempts; other codes are never retried.
func TestRetriesOnlyWhatIsSafeToRepeat(t *testing.T) {
	var mu sync.Mutex
	attempts := map[string]int{}
	failFirst := map[string]int{} // method → attempts answered UNAVAILABLE before one succeeds
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, stream grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(stream)
		if err := stream.RecvMsg(new(emptypb.Empty)); err != nil {
			return err
		}
		mu.Lock()
		attempts[method]++
		n, fail := attempts[method], failFirst[method]
		mu.Unlock()
		switch {
		case fail < 0:
			return status.Error(codes.Internal, "boom")
		case n <= fail:
			return status.Error(codes.Unavailable, "not yet")
		}
		return stream.SendMsg(new(emptypb.Empty))
	}))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpcclient.Dial(lis.Addr().String(), grpcclient.NewMetrics(prometheus.NewRegistry()), grpcclient.Options{
		Protos: []protoreflect.FileDescriptor{pricingv1.File_carbuild_pricing_v1_pricing_proto, pricingpb.File_pricing_pricing_proto},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	tests := []struct {
		name         string
		method       string
		fail         int // UNAVAILABLE answers before success; -1: always INTERNAL
		wantCode     codes.Code
		wantAttempts int
	}{
		{"no side effects: retried through two UNAVAILABLE", "/carbuild.pricing.v1.PricingService/CreateQuote", 2, codes.OK, 3},
		{"idempotent (keyed order): retried", "/carbuild.pricing.v1.PricingService/PlaceOrder", 1, codes.OK, 2},
		{"no side effects, still down: gives up after the policy's attempts", "/carbuild.pricing.v1.PricingService/GetOrder", 100, codes.Unavailable, 4},
		{"no side effects, other code: not retried", "/carbuild.pricing.v1.PricingService/ListOrders", -1, codes.Internal, 1},
		{"seed no side effects: retried", "/pricing.OrcamentoService/Calcular", 1, codes.OK, 2},
		{"seed purchase without a key: never retried", "/pricing.OrcamentoService/RealizarCompra", 1, codes.Unavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mu.Lock()
			failFirst[tt.method] = tt.fail
			mu.Unlock()
			err := conn.Invoke(context.Background(), tt.method, new(emptypb.Empty), new(emptypb.Empty))
			if got := status.Code(err); got != tt.wantCode {
				t.Errorf("code %v (%v), want %v", got, err, tt.wantCode)
			}
			mu.Lock()
			got := attempts[tt.method]
			mu.Unlock()
			if got != tt.wantAttempts {
				t.Errorf("server saw %d attempts, want %d", got, tt.wantAttempts)
			}
		})
	}
}

// With nothing listening, a call safe to repeat still fails UNAVAILABLE
// after its retries, not DEADLINE_EXCEEDED: callers answer a prompt 503.
func TestDownBackendFailsUnavailable(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	conn, err := grpcclient.Dial(addr, grpcclient.NewMetrics(prometheus.NewRegistry()), grpcclient.Options{
		DefaultTimeout: time.Minute,
		Protos:         []protoreflect.FileDescriptor{pricingv1.File_carbuild_pricing_v1_pricing_proto},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	err = conn.Invoke(context.Background(), "/carbuild.pricing.v1.PricingService/CreateQuote", new(emptypb.Empty), new(emptypb.Empty))
	if status.Code(err) != codes.Unavailable {
		t.Errorf("got %v, want UNAVAILABLE", err)
	}
}
