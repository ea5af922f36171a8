// Package tracing sets up optional OpenTelemetry tracing for a service. It is
// off unless OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT
// is set (the standard OpenTelemetry variables; OTEL_EXPORTER_OTLP_INSECURE,
// OTEL_TRACES_SAMPLER and friends apply too). The OTLP/gRPC exporter connects
// lazily and drops spans it cannot send, so an absent collector never blocks
// or crashes start-up or requests.
package tracing

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"google.golang.org/grpc"

	"github.com/carbuild/carbuild/shared/buildinfo"
)

// Tracing is the tracing set-up of one process; the zero value is off.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// Configured reports whether the environment asks for tracing.
func Configured(lookupEnv func(string) (string, bool)) bool {
	for _, k := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		if v, ok := lookupEnv(k); ok && v != "" {
			return true
		}
	}
	return false
}

// Setup starts tracing for service when the environment configures an OTLP
// endpoint, and returns an off Tracing otherwise. It never dials.
func Setup(ctx context.Context, service string, log *slog.Logger) (*Tracing, error) {
	if !Configured(os.LookupEnv) {
		return &Tracing{}, nil
	}
	exp, err := otlptracegrpc.New(ctx) // reads OTEL_EXPORTER_OTLP_*; connects lazily
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(service), semconv.ServiceVersion(buildinfo.Version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	log.Info("tracing on: exporting spans over OTLP/gRPC")
	return &Tracing{tp: tp}, nil
}

// Enabled reports whether spans are recorded.
func (t *Tracing) Enabled() bool { return t != nil && t.tp != nil }

// ServerOptions instrument a gRPC server (none when off).
func (t *Tracing) ServerOptions() []grpc.ServerOption {
	if !t.Enabled() {
		return nil
	}
	return []grpc.ServerOption{grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(t.tp)))}
}

// DialOptions instrument a gRPC client connection (none when off).
func (t *Tracing) DialOptions() []grpc.DialOption {
	if !t.Enabled() {
		return nil
	}
	return []grpc.DialOption{grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpc.WithTracerProvider(t.tp)))}
}

// HTTPHandler instruments an HTTP handler (unchanged when off).
func (t *Tracing) HTTPHandler(h http.Handler, operation string) http.Handler {
	if !t.Enabled() {
		return h
	}
	return otelhttp.NewHandler(h, operation, otelhttp.WithTracerProvider(t.tp))
}

// Shutdown flushes what it can within 5 seconds; a collector that does not
// answer costs at most that.
func (t *Tracing) Shutdown() error {
	if !t.Enabled() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return t.tp.Shutdown(ctx)
}
