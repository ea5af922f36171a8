package grpctls_test

import (
	"context"
	"crypto/tls"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/carbuild/carbuild/shared/devcert"
	"github.com/carbuild/carbuild/shared/grpctls"
)

// files issues a certificate for name (a DNS name, and 127.0.0.1) and
// returns it as files with caFile.
func files(t *testing.T, ca *devcert.CA, dir, name, caFile string) grpctls.Files {
	t.Helper()
	cert, key, _ := ca.TestFiles(t, dir, devcert.Leaf{Name: name, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}})
	return grpctls.Files{Cert: cert, Key: key, CA: caFile}
}

// TestMutualTLS serves grpc.health.v1 with mTLS on, accepting the client
// identity "gateway" only: that client is served; a client of another
// identity, one signed by another CA, one without a certificate and a
// plaintext one are all refused.
func TestMutualTLS(t *testing.T) {
	dir, otherDir := t.TempDir(), t.TempDir()
	ca, caFile := devcert.TestCA(t, dir, "carbuild-ca")
	other, otherFile := devcert.TestCA(t, otherDir, "other-ca")

	serverOpts, err := grpctls.ServerOptions(files(t, ca, dir, "catalog", caFile), "gateway, pricing")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(serverOpts...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)

	gateway := files(t, ca, dir, "gateway", caFile)
	intruder := files(t, ca, dir, "intruder", caFile)
	foreign := files(t, other, otherDir, "pricing", otherFile)
	foreign.CA = caFile // it trusts our server, but its own certificate is not ours
	pool := ca.Pool()

	dialOpts := func(f grpctls.Files) []grpc.DialOption {
		o, err := grpctls.DialOptions(f)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name   string
		opts   []grpc.DialOption
		wantOK bool
	}{
		{"allowed client", dialOpts(gateway), true},
		{"other identity, same CA", dialOpts(intruder), false},
		{"certificate of another CA", dialOpts(foreign), false},
		{"no client certificate", []grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}))}, false},
		{"plaintext", []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := grpc.NewClient(lis.Addr().String(), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
			if tt.wantOK && err != nil {
				t.Errorf("got %v, want served", err)
			}
			if !tt.wantOK && err == nil {
				t.Error("served, want refused")
			}
		})
	}
}

// TestFilesTogether: the three files go together; none is plaintext.
func TestFilesTogether(t *testing.T) {
	for _, tt := range []struct {
		f              grpctls.Files
		wantOn, wantOK bool
	}{
		{grpctls.Files{}, false, true},
		{grpctls.Files{Cert: "a", Key: "b", CA: "c"}, true, true},
		{grpctls.Files{Cert: "a", Key: "b"}, false, false},
		{grpctls.Files{CA: "c"}, false, false},
	} {
		on, err := tt.f.Enabled()
		if on != tt.wantOn || (err == nil) != tt.wantOK {
			t.Errorf("%+v: got %v, %v; want %v, ok %v", tt.f, on, err, tt.wantOn, tt.wantOK)
		}
	}
	if opts, err := grpctls.ServerOptions(grpctls.Files{}, ""); err != nil || opts != nil {
		t.Errorf("mTLS off: server options %v, %v; want none", opts, err)
	}
}
