package auth

import (
	"context"
	"errors"

	middleware "github.com/grpc-ecosystem/go-grpc-middleware/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// MetadataKey is the gRPC metadata carrying "Bearer <token>", as HTTP's
// Authorization header does; the gateway forwards the header as is.
const MetadataKey = "authorization"

// identify verifies the call's bearer token, if any. No token is an
// anonymous call (ctx unchanged); a token that does not verify is
// UNAUTHENTICATED, never silently anonymous.
func (v *Verifier) identify(ctx context.Context) (context.Context, error) {
	vals := metadata.ValueFromIncomingContext(ctx, MetadataKey)
	if len(vals) == 0 {
		return ctx, nil
	}
	if len(vals) > 1 {
		return nil, status.Error(codes.Unauthenticated, "more than one authorization value")
	}
	raw, _, err := BearerToken(vals[0])
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	id, err := v.Verify(ctx, raw)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return nil, status.FromContextError(err).Err()
		}
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return NewContext(ctx, id), nil
}

// UnaryServerInterceptor verifies the bearer token of every call and puts
// the identity in the handler's context. v may be nil (authentication off:
// every call is anonymous and a token is refused).
func UnaryServerInterceptor(v *Verifier) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := v.identify(ctx)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streams.
func StreamServerInterceptor(v *Verifier) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := v.identify(ss.Context())
		if err != nil {
			return err
		}
		w := middleware.WrapServerStream(ss)
		w.WrappedContext = ctx
		return handler(srv, w)
	}
}

// ServerOptions are the grpc.ServerOptions that install both interceptors;
// they run after the shared chain (metrics, logging, recovery), so refused
// tokens are counted and logged as UNAUTHENTICATED.
func ServerOptions(v *Verifier) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(UnaryServerInterceptor(v)),
		grpc.ChainStreamInterceptor(StreamServerInterceptor(v)),
	}
}

// WithBearer returns ctx whose outgoing calls carry token.
func WithBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, MetadataKey, "Bearer "+token)
}
