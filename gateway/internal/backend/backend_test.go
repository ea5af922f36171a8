package backend

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"

	"github.com/carbuild/carbuild/shared/grpcclient"
)

// startInstance serves the health service on a loopback port.
func startInstance(t *testing.T) (addr string, hs *health.Server) {
	t.Helper()
	srv := grpc.NewServer()
	hs = health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	return lis.Addr().String(), hs
}

// A backend of two instances, one of them leaving (NOT_SERVING while it
// still serves), is SERVING at every poll, though the balanced connection
// sends every other Check to the leaving one; with both NOT_SERVING it is
// NOT_SERVING, and SERVING again as soon as one serves.
func TestOneInstanceLeavingIsNoOutage(t *testing.T) {
	addrA, a := startInstance(t)
	addrB, b := startInstance(t)
	r := manual.NewBuilderWithScheme("backendtest")
	r.InitialState(resolver.State{Addresses: []resolver.Address{{Addr: addrA}, {Addr: addrB}}})
	conn, err := grpcclient.Dial(r.Scheme()+":///pricing", grpcclient.NewMetrics(prometheus.NewRegistry()), grpcclient.Options{
		Extra: []grpc.DialOption{grpc.WithResolvers(r)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w := NewWatcher(slog.New(slog.DiscardHandler), 5*time.Second, map[string]*grpc.ClientConn{"pricing": conn})
	ctx := context.Background()
	status := func() string { return w.Statuses()["pricing"] }
	serving := healthpb.HealthCheckResponse_SERVING.String()
	notServing := healthpb.HealthCheckResponse_NOT_SERVING.String()

	// Both instances answer before one leaves: the connection balances over
	// the two only once both are connected.
	seen := map[string]bool{}
	for deadline := time.Now().Add(10 * time.Second); len(seen) < 2 && time.Now().Before(deadline); {
		var p peer.Peer
		if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err == nil {
			seen[p.Addr.String()] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("Checks reached %v, want both instances", seen)
	}

	w.poll(ctx)
	if status() != serving || !w.Ready() {
		t.Fatalf("both serving: status %s, ready %v", status(), w.Ready())
	}
	b.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	for i := range 50 {
		w.poll(ctx)
		if status() != serving || !w.Ready() {
			t.Fatalf("poll %d with one instance leaving: status %s, ready %v; want SERVING", i, status(), w.Ready())
		}
	}
	a.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	w.poll(ctx)
	if status() != notServing || w.Ready() {
		t.Errorf("both not serving: status %s, ready %v; want NOT_SERVING", status(), w.Ready())
	}
	a.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	w.poll(ctx)
	if status() != serving || !w.Ready() {
		t.Errorf("one serving again: status %s, ready %v; want SERVING", status(), w.Ready())
	}
}
