// Package grpcclient opens the one client connection a service keeps per
// backend: client metrics, keepalive, a default deadline for calls that have
// none, a round-robin policy over every address the target resolves to, and
// retries on UNAVAILABLE for the methods their protos declare safe to repeat.
package grpcclient

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
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
	// Protos are the files of the services called over the connection.
	// Their methods whose proto says idempotency_level NO_SIDE_EFFECTS or
	// IDEMPOTENT are retried when a call fails UNAVAILABLE (the retry
	// policy below); the others never.
	Protos []protoreflect.FileDescriptor
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
	sc, err := serviceConfig(o.Protos)
	if err != nil {
		return nil, err
	}
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(sc),
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

// The retry policy of the methods safe to repeat. UNAVAILABLE is what a
// call gets when no backend is ready at the instant it is picked: in a
// rolling restart, between the old pod closing its listener (after its
// drain) and the client's re-resolution reaching the new one, a window of
// milliseconds. A few quick attempts bridge it; a backend that is really
// down still fails the call with UNAVAILABLE after at most 650 ms of
// backoff in all (gRPC draws each wait at random below its cap: 50, 150,
// 450 ms), so callers answer a prompt 503, never a wait for their deadline.
const (
	retryAttempts       = 4
	retryInitialBackoff = 50 * time.Millisecond
	retryMaxBackoff     = 450 * time.Millisecond
	retryMultiplier     = 3
)

// serviceConfig is the connection's default service config: round robin,
// and the retry policy for every method of files' services that its proto
// declares safe to repeat.
func serviceConfig(files []protoreflect.FileDescriptor) (string, error) {
	type name struct {
		Service string `json:"service"`
		Method  string `json:"method"`
	}
	type retryPolicy struct {
		MaxAttempts          int      `json:"maxAttempts"`
		InitialBackoff       string   `json:"initialBackoff"`
		MaxBackoff           string   `json:"maxBackoff"`
		BackoffMultiplier    float64  `json:"backoffMultiplier"`
		RetryableStatusCodes []string `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name        []name       `json:"name"`
		RetryPolicy *retryPolicy `json:"retryPolicy"`
	}
	var safe []name
	for _, f := range files {
		for i := range f.Services().Len() {
			sd := f.Services().Get(i)
			for j := range sd.Methods().Len() {
				m := sd.Methods().Get(j)
				opts, _ := m.Options().(*descriptorpb.MethodOptions)
				switch opts.GetIdempotencyLevel() {
				case descriptorpb.MethodOptions_NO_SIDE_EFFECTS, descriptorpb.MethodOptions_IDEMPOTENT:
					safe = append(safe, name{Service: string(sd.FullName()), Method: string(m.Name())})
				}
			}
		}
	}
	cfg := struct {
		LoadBalancingConfig []map[string]struct{} `json:"loadBalancingConfig"`
		MethodConfig        []methodConfig        `json:"methodConfig,omitempty"`
	}{LoadBalancingConfig: []map[string]struct{}{{"round_robin": {}}}}
	if len(safe) > 0 {
		cfg.MethodConfig = []methodConfig{{Name: safe, RetryPolicy: &retryPolicy{
			MaxAttempts:          retryAttempts,
			InitialBackoff:       fmt.Sprintf("%gs", retryInitialBackoff.Seconds()),
			MaxBackoff:           fmt.Sprintf("%gs", retryMaxBackoff.Seconds()),
			BackoffMultiplier:    retryMultiplier,
			RetryableStatusCodes: []string{"UNAVAILABLE"},
		}}}
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("grpc service config: %w", err)
	}
	return string(b), nil
}
