package grpcclient_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

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
