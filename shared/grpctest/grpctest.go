// Package grpctest serves gRPC services in memory for tests: a real
// grpc.Server and a client connection to it over bufconn, so that calls go
// through gRPC's encoding, codecs and interceptors without a port.
package grpctest

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
)

// Serve starts a server with the services register adds and returns it and
// a connection to it; both are closed when the test ends (the server may be
// stopped earlier to see what clients do without it).
func Serve(tb testing.TB, register func(*grpc.Server)) (*grpc.Server, *grpc.ClientConn) {
	tb.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	tb.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return srv, conn
}
