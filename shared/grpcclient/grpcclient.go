// Package grpcclient opens the one client connection a service keeps per
// backend: client metrics, keepalive, a default deadline for calls that have
// none, and a round-robin policy over every address the target resolves to.
package grpcclient

import (
	"context"
	"fmt"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// HandlingTimeBuckets are client-side histogram buckets in seconds.
var HandlingTimeBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// WindowBytes is the least static flow-control window of a stream (a
// connection's is twice its stream's).
const WindowBytes = 1 << 20

// NewMetrics creates the go-grpc-middleware client metrics (with the
// handling-time histogram) and registers them on reg. Share one value across
// every connection of a process.
func NewMetrics(reg prometheus.Registerer) *grpcprom.ClientMetrics {
	m := grpcprom.NewClientMetrics(grpcprom.WithClientHandlingTimeHistogram(
		grpcprom.WithHistogramBuckets(HandlingTimeBuckets),
	))
	reg.MustRegister(m)
	return m
}

// Options configure a connection.
type Options struct {
	// DefaultTimeout is the longest a call may take: the deadline of a call
	// whose context has none, and the cap of a later one.
	DefaultTimeout time.Duration
	// MaxMessageBytes bounds received messages (default 1 MiB).
	MaxMessageBytes int
	// Extra options, e.g. tracing's stats handler, or mTLS credentials
	// (package grpctls), which replace the default plaintext: options apply
	// in order, Extra last.
	Extra []grpc.DialOption
}

// Dial opens a lazy connection to target ("host:port", or "dns:///name:port"
// to balance over every address of a headless Service).
func Dial(target string, m *grpcprom.ClientMetrics, o Options) (*grpc.ClientConn, error) {
	if o.DefaultTimeout <= 0 {
		o.DefaultTimeout = 5 * time.Second
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 1 << 20
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second, PermitWithoutStream: true}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxMessageBytes)),
		// Static flow-control windows, each large enough for the largest
		// message, turn off BDP estimation: with dynamic windows grpc-go
		// pings the peer on most data frames when calls come one or a few
		// at a time, and each ping and its ack cost both sides a write, a
		// read and a wake-up. Calls of a health check one at a time over
		// loopback: 243-255 → 200-215 µs of CPU per call, client and server
		// together (docs/performance.md). Our peers are in the same
		// cluster; the bandwidth-delay product BDP estimation discovers is
		// far below these windows.
		grpc.WithStaticStreamWindowSize(int32(max(o.MaxMessageBytes, WindowBytes))),
		grpc.WithStaticConnWindowSize(int32(2 * max(o.MaxMessageBytes, WindowBytes))),
		grpc.WithChainUnaryInterceptor(
			defaultDeadline(o.DefaultTimeout),
			m.UnaryClientInterceptor(),
		),
		grpc.WithChainStreamInterceptor(m.StreamClientInterceptor()),
	}, o.Extra...)
	conn, err := grpc.NewClient(target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", target, err)
	}
	return conn, nil
}

// defaultDeadline gives every call a deadline of at most d: the caller's when
// it is sooner (a client's Grpc-Timeout can shorten a call, never lengthen it
// past d).
func defaultDeadline(d time.Duration) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > d {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
}
